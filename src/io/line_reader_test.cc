#include "virga/line_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "virga/text_writer.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

class LineReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/virga_lr_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string WriteRaw(const std::string& name, const std::string& bytes) {
    std::ofstream(Path(name), std::ios::binary) << bytes;
    return Path(name);
  }
  // Writes `text` through TextWriter (so compressed by the name's suffix).
  std::string WriteText(const std::string& name, const std::string& text) {
    auto w = TextWriter::Open(Path(name));
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->Write(text).ok());
    EXPECT_TRUE((*w)->Close().ok());
    return Path(name);
  }
  static std::string ReadRaw(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // All lines of `path`, or the error.
  static Status ReadAll(const std::string& path, std::vector<std::string>* lines,
                        const LineReaderOptions& options = {}) {
    lines->clear();
    VIRGA_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path, options));
    std::string_view line;
    for (;;) {
      VIRGA_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
      if (!more) break;
      lines->emplace_back(line);
      if (reader->line_number() != lines->size()) return Status::Internal("bad line_number");
    }
    return Status::OK();
  }

  std::string dir_;
};

using Lines = std::vector<std::string>;

// Lines of random lengths 0..max_len (some much longer), as text and as a list.
std::string RandomText(size_t n, size_t max_len, uint32_t seed, Lines* lines) {
  std::mt19937 rng(seed);
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    size_t len = rng() % (max_len + 1);
    if (rng() % 50 == 0) len *= 20;
    std::string line;
    for (size_t j = 0; j < len; ++j) line += static_cast<char>('a' + rng() % 26);
    lines->push_back(line);
    text += line + "\n";
  }
  return text;
}

TEST_F(LineReaderTest, PlainLines) {
  Lines lines;
  ASSERT_TRUE(ReadAll(WriteRaw("a.txt", "a\nbb\n\nccc\n"), &lines).ok());
  EXPECT_EQ(lines, (Lines{"a", "bb", "", "ccc"}));
  ASSERT_TRUE(ReadAll(WriteRaw("b.txt", "a\nlast"), &lines).ok());  // no final '\n'
  EXPECT_EQ(lines, (Lines{"a", "last"}));
  ASSERT_TRUE(ReadAll(WriteRaw("c.txt", "\n"), &lines).ok());
  EXPECT_EQ(lines, (Lines{""}));
  ASSERT_TRUE(ReadAll(WriteRaw("d.txt", "x"), &lines).ok());  // shorter than any magic
  EXPECT_EQ(lines, (Lines{"x"}));
  ASSERT_TRUE(ReadAll(WriteRaw("e.txt", "\x1f"), &lines).ok());  // half a gzip magic
  EXPECT_EQ(lines, (Lines{"\x1f"}));
}

TEST_F(LineReaderTest, EmptyFile) {
  for (std::string name : {"empty.txt", "empty.gz", "empty.zst"}) {
    const std::string path = WriteText(name, "");
    auto reader = LineReader::Open(path);
    ASSERT_TRUE(reader.ok()) << name;
    std::string_view line;
    auto more = (*reader)->Next(&line);
    ASSERT_TRUE(more.ok()) << name << ": " << more.status().ToString();
    EXPECT_FALSE(*more) << name;
    EXPECT_EQ((*reader)->line_number(), 0u);
    EXPECT_EQ((*reader)->text_bytes_read(), 0u);
    EXPECT_EQ((*reader)->file_bytes_read(), fs::file_size(path)) << name;
  }
}

TEST_F(LineReaderTest, CrLf) {
  Lines lines;
  ASSERT_TRUE(ReadAll(WriteRaw("crlf.txt", "a\r\nb c\r\n\r\nmid\rdle\r\nlast\r"), &lines).ok());
  EXPECT_EQ(lines, (Lines{"a", "b c", "", "mid\rdle", "last"}));
  ASSERT_TRUE(ReadAll(WriteText("crlf.gz", "x\r\ny\r\n"), &lines).ok());
  EXPECT_EQ(lines, (Lines{"x", "y"}));
}

TEST_F(LineReaderTest, RoundTripsThroughEveryFormatAndBufferSize) {
  Lines want;
  const std::string text = RandomText(2000, 60, 1, &want);
  for (std::string name : {"t.txt", "t.gz", "t.zst"}) {
    const std::string path = WriteText(name, text);
    for (size_t buffer : {1, 2, 3, 7, 16, 61, 4096, 4 << 20}) {
      SCOPED_TRACE(name + " buffer_bytes=" + std::to_string(buffer));
      LineReaderOptions options;
      options.buffer_bytes = buffer;
      Lines got;
      Status s = ReadAll(path, &got, options);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(got, want);
    }
  }
}

TEST_F(LineReaderTest, CountersTrackLinesAndBytes) {
  const std::string text = "one\ntwo\r\nthree";
  for (std::string name : {"c.txt", "c.gz", "c.zst"}) {
    SCOPED_TRACE(name);
    const std::string path = WriteText(name, text);
    auto reader = LineReader::Open(path).value();
    EXPECT_EQ(reader->path(), path);
    std::string_view line;
    ASSERT_TRUE(*reader->Next(&line));
    EXPECT_EQ(line, "one");
    EXPECT_EQ(reader->line_number(), 1u);
    EXPECT_EQ(reader->text_bytes_read(), 4u);
    ASSERT_TRUE(*reader->Next(&line));
    EXPECT_EQ(line, "two");
    EXPECT_EQ(reader->text_bytes_read(), 9u);  // terminators included
    ASSERT_TRUE(*reader->Next(&line));
    EXPECT_EQ(line, "three");
    EXPECT_EQ(reader->line_number(), 3u);
    EXPECT_FALSE(*reader->Next(&line));
    EXPECT_FALSE(*reader->Next(&line));  // stays at the end
    EXPECT_EQ(reader->line_number(), 3u);
    EXPECT_EQ(reader->text_bytes_read(), text.size());
    EXPECT_EQ(reader->file_bytes_read(), fs::file_size(path));
  }
}

TEST_F(LineReaderTest, LineOverMaxIsAnError) {
  LineReaderOptions options;
  options.max_line_bytes = 100;
  options.buffer_bytes = 16;
  const std::string ok100(100, 'x');
  Lines lines;
  // Exactly max_line_bytes is fine, with "\n" or "\r\n" or at the end.
  ASSERT_TRUE(
      ReadAll(WriteRaw("ok.txt", ok100 + "\n" + ok100 + "\r\n" + ok100), &lines, options).ok());
  EXPECT_EQ(lines, (Lines{ok100, ok100, ok100}));
  for (const std::string& text :
       {"a\nb\n" + std::string(101, 'y') + "\nc\n", "a\nb\n" + std::string(5000, 'y') + "\nc\n",
        "a\nb\n" + std::string(101, 'y')}) {
    const std::string path = WriteRaw("long.txt", text);
    Status s = ReadAll(path, &lines, options);
    EXPECT_EQ(s.code(), Status::Code::kResourceExhausted) << s.ToString();
    EXPECT_NE(s.message().find(path + ":3:"), std::string::npos) << s.ToString();
    EXPECT_EQ(lines, (Lines{"a", "b"}));
  }
}

TEST_F(LineReaderTest, TruncatedCompressedFileIsAnError) {
  Lines want;
  const std::string text = RandomText(20000, 80, 2, &want);
  for (std::string name : {"t.gz", "t.zst"}) {
    const std::string full = ReadRaw(WriteText(name, text));
    ASSERT_GT(full.size(), 1000u);
    for (size_t cut : {full.size() - 1, full.size() - 4, full.size() / 2, size_t{10}}) {
      SCOPED_TRACE(name + " cut at " + std::to_string(cut));
      const std::string path = WriteRaw("cut-" + name, full.substr(0, cut));
      Lines got;
      Status s = ReadAll(path, &got);
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
      EXPECT_LT(got.size(), want.size() + 1);
    }
  }
}

TEST_F(LineReaderTest, CorruptCompressedDataIsAnError) {
  Lines want;
  const std::string text = RandomText(5000, 80, 3, &want);
  for (std::string name : {"c.gz", "c.zst"}) {
    std::string bytes = ReadRaw(WriteText(name, text));
    for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 8; ++i) bytes[i] ^= 0x5a;
    Lines got;
    Status s = ReadAll(WriteRaw("bad-" + name, bytes), &got);
    EXPECT_TRUE(s.IsCorruption()) << name << ": " << s.ToString();
    // Trailing junk after a complete stream is not silently ignored either.
    s = ReadAll(WriteRaw("junk-" + name, ReadRaw(Path(name)) + "junk"), &got);
    EXPECT_TRUE(s.IsCorruption()) << name << ": " << s.ToString();
  }
}

TEST_F(LineReaderTest, ConcatenatedMembers) {
  // As `cat a.gz b.gz > ab.gz`; a line may straddle the members.
  for (std::string ext : {".gz", ".zst"}) {
    SCOPED_TRACE(ext);
    const std::string a = ReadRaw(WriteText("a" + ext, "first\nsplit-"));
    const std::string b = ReadRaw(WriteText("b" + ext, "line\nlast\n"));
    const std::string e = ReadRaw(WriteText("e" + ext, ""));
    for (size_t buffer : {size_t{3}, size_t{4} << 20}) {
      LineReaderOptions options;
      options.buffer_bytes = buffer;
      Lines lines;
      Status s = ReadAll(WriteRaw("ab" + ext, a + e + b + e), &lines, options);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(lines, (Lines{"first", "split-line", "last"}));
    }
  }
}

TEST_F(LineReaderTest, FormatComesFromMagicNotName) {
  Lines lines;
  const std::string gz = ReadRaw(WriteText("x.gz", "zipped\n"));
  ASSERT_TRUE(ReadAll(WriteRaw("named.txt", gz), &lines).ok());
  EXPECT_EQ(lines, (Lines{"zipped"}));
  ASSERT_TRUE(ReadAll(WriteRaw("plain.gz", "not zipped\n"), &lines).ok());
  EXPECT_EQ(lines, (Lines{"not zipped"}));
}

TEST_F(LineReaderTest, MissingFileIsNotFound) {
  const std::string path = Path("does-not-exist.txt");
  auto reader = LineReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_TRUE(reader.status().IsNotFound());
  EXPECT_NE(reader.status().message().find(path), std::string::npos);
  Lines lines;
  Status s = ReadAll(dir_, &lines);  // a directory
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir_), std::string::npos) << s.ToString();
}

TEST_F(LineReaderTest, DashReadsStandardInput) {
  const std::string path = WriteText("stdin.zst", "from\nstdin\n");
  const int saved = ::dup(STDIN_FILENO);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_GE(::dup2(fd, STDIN_FILENO), 0);
  ::close(fd);
  Lines lines;
  Status s = ReadAll("-", &lines);
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(lines, (Lines{"from", "stdin"}));
}

}  // namespace
}  // namespace virga
