// LineReader over object URIs: the same lines as from a local file, with
// chunks fetched ahead in the background.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "io/byte_source.h"
#include "virga/line_reader.h"
#include "virga/object_store.h"
#include "virga/text_writer.h"

namespace virga {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

class ObjectLineReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = std::string("mem://lr_object_") + info->name();
    store_ = *ObjectStore::Open(root_);
    dir_ = fs::temp_directory_path() /
           ("virga-lr-object-" + std::to_string(::getpid()) + "-" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` to a local file (compressed by the name's suffix) and the
  // same bytes to the object raw/<name>; returns the local path.
  std::string WriteBoth(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    auto w = TextWriter::Open(path);
    EXPECT_TRUE(w.ok() && (*w)->Write(text).ok() && (*w)->Close().ok());
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(store_->Put("raw/" + name, bytes).ok());
    return path;
  }
  std::string Uri(const std::string& name) const { return root_ + "/raw/" + name; }

  static Status ReadAll(const std::string& path, Lines* lines,
                        const LineReaderOptions& options = {}) {
    lines->clear();
    VIRGA_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path, options));
    std::string_view line;
    for (;;) {
      VIRGA_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
      if (!more) break;
      lines->emplace_back(line);
    }
    return Status::OK();
  }

  std::string root_;
  std::shared_ptr<ObjectStore> store_;
  fs::path dir_;
};

std::string RandomText(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    size_t len = rng() % 120;
    if (rng() % 40 == 0) len *= 30;  // some lines span many chunks
    for (size_t j = 0; j < len; ++j) text += static_cast<char>('a' + rng() % 26);
    text += i % 7 == 0 ? "\r\n" : "\n";
  }
  return text + "last line without a newline";
}

TEST_F(ObjectLineReaderTest, SameLinesAsTheLocalFile) {
  // Tiny chunks on a small text (each chunk is one GET), realistic ones on a
  // larger one.
  const std::pair<std::string, std::vector<size_t>> cases[] = {
      {RandomText(40, 1), {1, 7}}, {RandomText(3000, 2), {997, 4096, size_t{8} << 20}}};
  for (const auto& [text, chunks] : cases) {
    for (std::string name : {"t.txt", "t.gz", "t.zst"}) {
      const std::string path = WriteBoth(name, text);
      Lines want;
      ASSERT_TRUE(ReadAll(path, &want).ok());
      for (size_t chunk : chunks) {
        SCOPED_TRACE(name + " object_chunk_bytes=" + std::to_string(chunk));
        LineReaderOptions options;
        options.object_chunk_bytes = chunk;
        Lines got;
        Status s = ReadAll(Uri(name), &got, options);
        ASSERT_TRUE(s.ok()) << s.ToString();
        ASSERT_EQ(got.size(), want.size());
        EXPECT_TRUE(got == want);
      }
      auto reader = LineReader::Open(Uri(name)).value();
      std::string_view line;
      while (*reader->Next(&line)) {
      }
      EXPECT_EQ(reader->path(), Uri(name));
      EXPECT_EQ(reader->file_bytes_read(), fs::file_size(path));
      EXPECT_EQ(reader->text_bytes_read(), text.size());
    }
  }
}

TEST_F(ObjectLineReaderTest, LineStraddlingChunks) {
  const std::string long_line(1000, 'x');
  WriteBoth("s.txt", "a\n" + long_line + "\nb\n");
  LineReaderOptions options;
  options.object_chunk_bytes = 7;  // the long line spans ~143 chunks
  options.buffer_bytes = 16;
  Lines got;
  ASSERT_TRUE(ReadAll(Uri("s.txt"), &got, options).ok());
  EXPECT_EQ(got, (Lines{"a", long_line, "b"}));
}

TEST_F(ObjectLineReaderTest, EmptyObjectAndFileUris) {
  const std::string path = WriteBoth("e.gz", "");
  Lines got = {"junk"};
  ASSERT_TRUE(ReadAll(Uri("e.gz"), &got).ok());
  EXPECT_TRUE(got.empty());
  WriteBoth("f.txt", "local\n");
  ASSERT_TRUE(ReadAll("file://" + (dir_ / "f.txt").string(), &got).ok());  // read as a path
  EXPECT_EQ(got, (Lines{"local"}));
}

TEST_F(ObjectLineReaderTest, ErrorsNameTheUri) {
  std::string bytes;
  WriteBoth("full.gz", RandomText(5000, 2));
  ASSERT_TRUE(store_->Get("raw/full.gz", &bytes).ok());
  ASSERT_TRUE(store_->Put("raw/cut.gz", bytes.substr(0, bytes.size() / 2)).ok());
  LineReaderOptions options;
  options.object_chunk_bytes = 1000;
  Lines got;
  Status s = ReadAll(Uri("cut.gz"), &got, options);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(Uri("cut.gz") + ":"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("truncated gzip"), std::string::npos) << s.ToString();

  auto missing = LineReader::Open(Uri("absent.txt"));
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_EQ(missing.status().message().rfind(Uri("absent.txt"), 0), 0u)
      << missing.status().ToString();
  auto bad = LineReader::Open("mem://no_key_here");
  EXPECT_TRUE(bad.status().IsInvalidArgument()) << bad.status().ToString();
}

// Forwards to a store, counting GetRange calls and failing those from
// `fail_at` on.
class CountingStore final : public ObjectStore {
 public:
  explicit CountingStore(std::shared_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}
  std::string uri() const override { return inner_->uri(); }
  Status Put(std::string_view k, std::string_view d) override { return inner_->Put(k, d); }
  Status Get(std::string_view k, std::string* out) override { return inner_->Get(k, out); }
  Status GetRange(std::string_view k, uint64_t o, uint64_t n, std::string* out) override {
    ranges.fetch_add(1);
    if (o >= fail_at) return Status::Unavailable("store is down");
    return inner_->GetRange(k, o, n, out);
  }
  Result<std::vector<ObjectInfo>> List(std::string_view p) override { return inner_->List(p); }
  Status Delete(std::string_view k) override { return inner_->Delete(k); }
  Result<bool> Exists(std::string_view k) override { return inner_->Exists(k); }
  Result<ObjectInfo> Stat(std::string_view k) override { return inner_->Stat(k); }

  std::atomic<int> ranges{0};
  uint64_t fail_at = UINT64_MAX;

 private:
  std::shared_ptr<ObjectStore> inner_;
};

TEST_F(ObjectLineReaderTest, ChunksAreFetchedAheadAndBounded) {
  ASSERT_TRUE(store_->Put("raw/ten", std::string(10000, 'z')).ok());
  auto counting = std::make_shared<CountingStore>(store_);
  io_internal::ObjectSourceOptions o;
  o.chunk_bytes = 1000;
  o.chunks_ahead = 3;
  auto src = io_internal::OpenObjectSource(counting, "raw/ten", "mem://x/raw/ten", o);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  char byte;
  size_t got = 0;
  ASSERT_TRUE((*src)->Read(&byte, 1, &got).ok());
  EXPECT_EQ(got, 1u);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(counting->ranges.load(), 4);  // the chunk being read + 3 ahead, no more
  std::string rest(20000, '\0');
  size_t total = 1;
  while (((*src)->Read(rest.data(), rest.size(), &got)).ok() && got > 0) total += got;
  EXPECT_EQ(total, 10000u);
  EXPECT_EQ(counting->ranges.load(), 10);

  counting->fail_at = 5000;  // a fault part way is returned in order, naming the offset
  counting->ranges = 0;
  o.max_attempts = 2;
  src = io_internal::OpenObjectSource(counting, "raw/ten", "mem://x/raw/ten", o);
  ASSERT_TRUE(src.ok());
  total = 0;
  Status s;
  while ((s = (*src)->Read(rest.data(), 300, &got)).ok() && got > 0) total += got;
  EXPECT_EQ(total, 5000u);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("5000"), std::string::npos) << s.ToString();
  EXPECT_EQ(counting->ranges.load(), 5 + 2);  // chunks 0..4, then two tries of chunk 5
}

// Byte ranges that partition a file return every line exactly once, in
// order, from a local file and from an object alike, whatever the cut points
// (mid-line, on a '\n', right after one) and chunk sizes.
TEST_F(ObjectLineReaderTest, ByteRangesPartitionTheLines) {
  const std::string text = RandomText(3000, 7);
  const std::string path = WriteBoth("big.txt", text);
  Lines all;
  ASSERT_TRUE(ReadAll(path, &all).ok());
  std::mt19937 rng(11);
  for (int round = 0; round < 12; ++round) {
    std::vector<uint64_t> cuts = {0};
    const int parts = 1 + static_cast<int>(rng() % 9);
    for (int i = 1; i < parts; ++i) cuts.push_back(rng() % text.size());
    if (round == 1) cuts = {0, text.find('\n'), text.find('\n') + 1};  // on and after a '\n'
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    cuts.push_back(text.size());
    for (const std::string& source : {path, Uri("big.txt")}) {
      Lines joined;
      for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        LineReaderOptions o;
        o.range_begin = cuts[i];
        o.range_end = i + 2 == cuts.size() && round % 2 == 0 ? 0 : cuts[i + 1];  // 0 = to the end
        o.buffer_bytes = 64 + rng() % 5000;
        o.object_chunk_bytes = 100 + rng() % 20000;
        Lines part;
        Status s = ReadAll(source, &part, o);
        ASSERT_TRUE(s.ok()) << s.ToString();
        joined.insert(joined.end(), part.begin(), part.end());
      }
      ASSERT_EQ(joined, all) << source << " round " << round;
    }
  }
}

TEST_F(ObjectLineReaderTest, ByteRangeErrorsAndLocations) {
  const std::string gz = WriteBoth("c.txt.gz", "a\nb\n");
  LineReaderOptions o;
  o.range_begin = 1;
  for (const std::string& source : {gz, Uri("c.txt.gz")}) {
    auto r = LineReader::Open(source, o);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find(source), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("compressed"), std::string::npos);
  }
  EXPECT_TRUE(*IsCompressedInput(gz));
  const std::string plain = WriteBoth("p.txt", "first\nsecond\nthird\n");
  EXPECT_FALSE(*IsCompressedInput(plain));
  EXPECT_FALSE(*IsCompressedInput(Uri("p.txt")));
  o.range_begin = 3;  // mid "first": the range starts with "second" (byte 6)
  auto r = LineReader::Open(plain, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string_view line;
  ASSERT_TRUE(*(*r)->Next(&line));
  EXPECT_EQ(line, "second");
  EXPECT_EQ((*r)->Where(), plain + " at byte 6");
  o.range_begin = 5;
  o.range_end = 5;
  EXPECT_TRUE(LineReader::Open(plain, o).status().IsInvalidArgument());
  auto whole = LineReader::Open(plain);
  ASSERT_TRUE(*(*whole)->Next(&line));
  ASSERT_TRUE(*(*whole)->Next(&line));
  EXPECT_EQ((*whole)->Where(), plain + ":2");
}

}  // namespace
}  // namespace virga
