#include "virga/ingest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "ingest/partition_writer.h"
#include "virga/dataset.h"
#include "virga/partition.h"
#include "virga/text_writer.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("virga-ingest-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = ObjectStore::Open("mem://ingest-" + dir_.filename().string());
    ASSERT_TRUE(s.ok());
    store_ = *s;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    auto w = TextWriter::Open(path);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->Write(text).ok());
    EXPECT_TRUE((*w)->Close().ok());
    return path;
  }

  // Every row of a split, decoded, in partition order.
  std::vector<std::pair<float, std::vector<std::pair<uint32_t, float>>>> ReadSplit(
      const Manifest& m, bool test) {
    std::vector<std::pair<float, std::vector<std::pair<uint32_t, float>>>> rows;
    PartitionBuffer buf;
    std::string bytes;
    for (const PartitionInfo& p : test ? m.test : m.train) {
      EXPECT_TRUE(store_->Get(p.key, &bytes).ok()) << p.key;
      Status s = DecodePartition(bytes, p.key, &buf);
      EXPECT_TRUE(s.ok()) << s.ToString();
      RowBlockView v = buf.view();
      EXPECT_EQ(v.rows(), p.rows);
      EXPECT_EQ(v.nnz(), p.nnz);
      EXPECT_EQ(bytes.size(), p.bytes);
      for (size_t r = 0; r < v.rows(); ++r) {
        std::vector<std::pair<uint32_t, float>> f;
        for (size_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) f.emplace_back(v.indices[q], v.value(q));
        rows.emplace_back(v.labels[r], std::move(f));
      }
    }
    return rows;
  }

  fs::path dir_;
  std::shared_ptr<ObjectStore> store_;
};

std::string LibsvmText(int rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string text;
  for (int r = 0; r < rows; ++r) {
    text += (r % 3 == 0) ? "+1" : "-1";
    uint32_t idx = 0;
    for (int k = 0; k < 1 + r % 5; ++k) {
      idx += 1 + rng() % 7;
      text += " " + std::to_string(idx) + ":" + (k == 0 ? std::string("1") : std::to_string(k) + ".5");
    }
    text += (r % 10 == 0) ? "\n\n# comment\n" : "\n";
  }
  return text;
}

TEST_F(IngestTest, LibsvmRoundTripWithSplitAndPartitions) {
  const std::string path = Write("a.libsvm", LibsvmText(1000, 1));
  IngestOptions o;
  o.format = Format::kLibsvm;
  o.inputs = {path};
  o.dataset = "a";
  o.test_fraction = 0.25;
  o.rows_per_partition = 64;
  auto report = Ingest(*store_, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows, 1000u);
  EXPECT_EQ(report->train_rows + report->test_rows, 1000u);
  EXPECT_GT(report->test_rows, 180u);
  EXPECT_LT(report->test_rows, 320u);
  EXPECT_EQ(report->skipped_lines, 0u);
  EXPECT_NE(report->Summary().find("1000 rows"), std::string::npos);

  auto m = ReadManifest(*store_, "a");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->train_rows, report->train_rows);
  EXPECT_EQ(m->test_rows, report->test_rows);
  EXPECT_EQ(m->train.size(), (m->train_rows + 63) / 64);
  EXPECT_EQ(m->test.size(), (m->test_rows + 63) / 64);
  EXPECT_EQ(report->partitions, m->train.size() + m->test.size());
  EXPECT_EQ(m->format, "libsvm");
  EXPECT_EQ(m->label.kind, "binary_pm1");
  EXPECT_EQ(m->label.count, 1000u);
  EXPECT_EQ(m->label.positives, 334u);

  // Reassemble the rows in input order from the split rule and compare with
  // an independent parse of the text.
  auto train = ReadSplit(*m, false), test = ReadSplit(*m, true);
  std::mt19937 rng(1);
  size_t ti = 0, si = 0;
  uint32_t max_index = 0;
  for (int r = 0; r < 1000; ++r) {
    std::vector<std::pair<uint32_t, float>> want;
    uint32_t idx = 0;
    for (int k = 0; k < 1 + r % 5; ++k) {
      idx += 1 + rng() % 7;
      want.emplace_back(idx, k == 0 ? 1.0f : k + 0.5f);
      max_index = std::max(max_index, idx);
    }
    const bool in_test = InTestSplit(o.split_seed, r, o.test_fraction);
    const auto& split = in_test ? test : train;
    size_t& next = in_test ? si : ti;
    ASSERT_LT(next, split.size()) << "row " << r;
    const auto* got = &split[next++];
    ASSERT_EQ(got->second, want) << "row " << r;
    EXPECT_EQ(got->first, r % 3 == 0 ? 1.0f : -1.0f) << "row " << r;
  }
  EXPECT_EQ(ti, train.size());
  EXPECT_EQ(si, test.size());
  EXPECT_EQ(m->num_features, max_index + 1u);
  // Features 1.5/2.5/... values make numeric stats exist; first features are 1.
  EXPECT_FALSE(m->numeric_features.empty());
}

// IngestRows of rows in memory makes the dataset Ingest makes of the same rows as text:
// the same split, partitions (byte for byte), statistics and manifest.
TEST_F(IngestTest, RowsFromMemoryGiveTheDatasetOfTheirText) {
  const std::string text = LibsvmText(700, 3);
  IngestOptions o;
  o.format = Format::kLibsvm;
  o.inputs = {Write("a.libsvm", text)};
  o.dataset = "text";
  o.test_fraction = 0.3;
  o.rows_per_partition = 50;
  auto from_text = Ingest(*store_, o);
  ASSERT_TRUE(from_text.ok()) << from_text.status().ToString();

  RowBlock rows;
  auto parser = MakeParser(Format::kLibsvm, o.parse);
  ASSERT_TRUE(parser.ok());
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = text.find('\n', begin);
    bool added = false;
    ASSERT_TRUE((*parser)->ParseLine(std::string_view(text).substr(begin, end - begin), &rows,
                                     &added).ok());
    begin = end + 1;
  }
  IngestOptions mo = o;
  mo.inputs = {"<memory>"};
  mo.dataset = "memory";
  auto from_rows = IngestRows(*store_, mo, rows.view());
  ASSERT_TRUE(from_rows.ok()) << from_rows.status().ToString();
  EXPECT_EQ(from_rows->rows, 700u);
  EXPECT_EQ(from_rows->train_rows, from_text->train_rows);
  EXPECT_EQ(from_rows->num_features, from_text->num_features);

  auto a = ReadManifest(*store_, "text"), b = ReadManifest(*store_, "memory");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->sources, std::vector<std::string>{"<memory>"});
  EXPECT_EQ(b->format, "libsvm");
  EXPECT_EQ(b->label.kind, a->label.kind);
  EXPECT_EQ(b->label.positives, a->label.positives);
  ASSERT_EQ(b->numeric_features.size(), a->numeric_features.size());
  for (size_t i = 0; i < a->numeric_features.size(); ++i) {
    EXPECT_EQ(b->numeric_features[i].index, a->numeric_features[i].index);
    EXPECT_EQ(b->numeric_features[i].sum, a->numeric_features[i].sum);
  }
  for (bool test : {false, true}) {
    const auto& pa = test ? a->test : a->train;
    const auto& pb = test ? b->test : b->train;
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      std::string xa, xb;
      ASSERT_TRUE(store_->Get(pa[i].key, &xa).ok() && store_->Get(pb[i].key, &xb).ok());
      EXPECT_EQ(xa, xb) << pa[i].key;
    }
  }

  // Bad values are errors naming the row, and leave no dataset.
  rows.values()[3] = std::nanf("");
  RowBlockView bad = rows.view();
  bad.values = std::span<const float>(rows.values().data(), rows.nnz());
  mo.dataset = "bad";
  auto failed = IngestRows(*store_, mo, bad);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("value is not finite"), std::string::npos);
  EXPECT_TRUE(ReadManifest(*store_, "bad").status().IsNotFound());
  mo.dataset = "memory";
  EXPECT_EQ(IngestRows(*store_, mo, rows.view()).status().code(), Status::Code::kAlreadyExists);
}

TEST_F(IngestTest, SplitIsDeterministicAndFractionExtremes) {
  const std::string path = Write("a.libsvm", LibsvmText(300, 2));
  for (double f : {0.0, 1.0, 0.5}) {
    IngestOptions o;
    o.inputs = {path};
    o.test_fraction = f;
    o.dataset = "x1";
    auto r1 = Ingest(*store_, o);
    o.dataset = "x2";
    auto r2 = Ingest(*store_, o);
    ASSERT_TRUE(r1.ok() && r2.ok());
    EXPECT_EQ(r1->test_rows, r2->test_rows);
    if (f == 0.0) {
      EXPECT_EQ(r1->test_rows, 0u);
    }
    if (f == 1.0) {
      EXPECT_EQ(r1->train_rows, 0u);
    }
    auto m1 = ReadManifest(*store_, "x1"), m2 = ReadManifest(*store_, "x2");
    EXPECT_EQ(ReadSplit(*m1, true), ReadSplit(*m2, true));
    for (const char* name : {"x1", "x2"}) {
      auto listed = store_->List(std::string("datasets/") + name + "/");
      for (const auto& obj : *listed) ASSERT_TRUE(store_->Delete(obj.key).ok());
    }
  }
}

TEST_F(IngestTest, BadLineFailsWithFileAndLineAndLeavesNothing) {
  const std::string path = Write("bad.libsvm", LibsvmText(200, 3) + "1 3:abc\n" + LibsvmText(5, 4));
  IngestOptions o;
  o.inputs = {path};
  o.dataset = "bad";
  o.rows_per_partition = 16;
  auto r = Ingest(*store_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  // 200 rows, with a blank line and a comment after every 10th row: 240 lines.
  EXPECT_NE(r.status().message().find(path + ":241: "), std::string::npos) << r.status().message();
  auto listed = store_->List("datasets/bad/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty()) << listed->size() << " objects left behind";
}

TEST_F(IngestTest, SkipModeCountsAndReportsEveryBadLine) {
  const std::string path =
      Write("bad.libsvm", "1 1:1\nx 2:1\n0 3:nan\n1 4:1\n0 -5:1\n1 6:1\n");
  IngestOptions o;
  o.inputs = {path};
  o.dataset = "skip";
  o.on_error = OnError::kSkip;
  std::vector<std::string> reports;
  o.on_skip = [&](const std::string& s) { reports.push_back(s); };
  auto r = Ingest(*store_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 3u);
  EXPECT_EQ(r->skipped_lines, 3u);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].rfind(path + ":2: ", 0), 0u) << reports[0];
  EXPECT_EQ(reports[1].rfind(path + ":3: ", 0), 0u) << reports[1];
  EXPECT_EQ(reports[2].rfind(path + ":5: ", 0), 0u) << reports[2];
  auto m = ReadManifest(*store_, "skip");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->skipped_lines, 3u);
}

TEST_F(IngestTest, RefusesExistingDatasetAndMissingFile) {
  const std::string path = Write("a.libsvm", LibsvmText(10, 5));
  IngestOptions o;
  o.inputs = {path};
  o.dataset = "dup";
  ASSERT_TRUE(Ingest(*store_, o).ok());
  auto again = Ingest(*store_, o);
  EXPECT_EQ(again.status().code(), Status::Code::kAlreadyExists);
  o.dataset = "missing";
  o.inputs = {(dir_ / "nope.txt").string()};
  auto missing = Ingest(*store_, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.txt"), std::string::npos);
  o.dataset = "bad/name";
  EXPECT_TRUE(Ingest(*store_, o).status().IsInvalidArgument());
}

TEST_F(IngestTest, CompressedInputsAndSeveralFilesAndCriteo) {
  std::string text;
  for (int r = 0; r < 100; ++r) {
    text += std::to_string(r % 2);
    for (int i = 0; i < 13; ++i) text += "\t" + (r % 7 == i ? std::string() : std::to_string(r * i));
    for (int c = 0; c < 26; ++c) text += "\t" + (r % 5 == 0 && c == 3 ? std::string() : "a" + std::to_string((r + c) % 9));
    text += "\n";
  }
  const std::string gz = Write("c.tsv.gz", text), zst = Write("c.tsv.zst", text);
  IngestOptions o;
  o.format = Format::kCriteo;
  o.inputs = {gz, zst};
  o.dataset = "criteo";
  o.parse.hash_bits = 12;
  o.test_fraction = 0;
  auto r = Ingest(*store_, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 200u);
  EXPECT_EQ(r->input_bytes, 2 * text.size());
  auto m = ReadManifest(*store_, "criteo");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->hash_bits, 12);
  EXPECT_EQ(m->num_features, 4096u);
  EXPECT_EQ(m->train_nnz, 200u * 39);
  EXPECT_TRUE(m->numeric_features.empty());
  EXPECT_EQ(m->sources.size(), 2u);
  auto rows = ReadSplit(*m, false);
  ASSERT_EQ(rows.size(), 200u);
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(rows[i], rows[i + 100]);  // same text, same rows
}

TEST_F(IngestTest, ObjectGlobGivesTheSameDatasetAsLocalFiles) {
  // Three days of input, plain, .gz and .zst, local and as objects.
  const std::vector<std::string> names = {"day_0.txt", "day_1.gz", "day_2.zst"};
  std::vector<std::string> local;
  auto raw = *ObjectStore::Open("mem://ingest-glob-raw");
  for (size_t i = 0; i < names.size(); ++i) {
    local.push_back(Write(names[i], LibsvmText(500 + 100 * static_cast<int>(i), 10 + i)));
    std::ifstream in(local.back(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_TRUE(raw->Put("raw/" + names[i], bytes).ok());
  }
  ASSERT_TRUE(raw->Put("raw/notes.md", "not input").ok());
  ASSERT_TRUE(raw->Put("raw/old/day_9.txt", "not input").ok());
  IngestOptions o;
  o.rows_per_partition = 128;
  o.inputs = local;
  o.dataset = "from-files";
  auto from_files = Ingest(*store_, o);
  ASSERT_TRUE(from_files.ok()) << from_files.status().ToString();
  o.inputs = {"mem://ingest-glob-raw/raw/day_*"};
  o.dataset = "from-objects";
  auto from_objects = Ingest(*store_, o);
  ASSERT_TRUE(from_objects.ok()) << from_objects.status().ToString();

  EXPECT_EQ(from_objects->rows, 1800u);
  EXPECT_EQ(from_objects->rows, from_files->rows);
  EXPECT_EQ(from_objects->train_rows, from_files->train_rows);
  EXPECT_EQ(from_objects->input_bytes, from_files->input_bytes);
  auto a = ReadManifest(*store_, "from-files");
  auto b = ReadManifest(*store_, "from-objects");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(b->sources, (std::vector<std::string>{"mem://ingest-glob-raw/raw/day_0.txt",
                                                  "mem://ingest-glob-raw/raw/day_1.gz",
                                                  "mem://ingest-glob-raw/raw/day_2.zst"}));
  EXPECT_EQ(a->train.size(), b->train.size());
  EXPECT_EQ(a->num_features, b->num_features);
  EXPECT_EQ(ReadSplit(*a, false), ReadSplit(*b, false));
  EXPECT_EQ(ReadSplit(*a, true), ReadSplit(*b, true));

  o.inputs = {"mem://ingest-glob-raw/raw/*.csv"};
  o.dataset = "from-nothing";
  auto none = Ingest(*store_, o);
  EXPECT_TRUE(none.status().IsNotFound()) << none.status().ToString();
  EXPECT_NE(none.status().message().find("mem://ingest-glob-raw/raw/*.csv"), std::string::npos);
}

// A store whose Puts fail after the first `ok_puts` partitions.
class FailingStore : public ObjectStore {
 public:
  FailingStore(ObjectStore& base, int ok_puts) : base_(base), ok_puts_(ok_puts) {}
  std::string uri() const override { return base_.uri(); }
  Status Put(std::string_view key, std::string_view data) override {
    if (key.find("/part-") != std::string_view::npos && puts_++ >= ok_puts_) {
      return Status::IOError(std::string(key) + ": disk on fire");
    }
    return base_.Put(key, data);
  }
  Status Get(std::string_view key, std::string* out) override { return base_.Get(key, out); }
  Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                  std::string* out) override {
    return base_.GetRange(key, offset, length, out);
  }
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override {
    return base_.List(prefix);
  }
  Status Delete(std::string_view key) override { return base_.Delete(key); }
  Result<bool> Exists(std::string_view key) override { return base_.Exists(key); }
  Result<ObjectInfo> Stat(std::string_view key) override { return base_.Stat(key); }

 private:
  ObjectStore& base_;
  const int ok_puts_;
  std::atomic<int> puts_{0};
};

TEST_F(IngestTest, StoreFaultFailsTheIngestAndLeavesNothing) {
  const std::string path = Write("a.libsvm", LibsvmText(3000, 6));
  for (int ok_puts : {0, 5, 40}) {
    FailingStore store(*store_, ok_puts);
    IngestOptions o;
    o.inputs = {path};
    o.dataset = "fault";
    o.rows_per_partition = 16;
    auto r = Ingest(store, o);
    ASSERT_FALSE(r.ok()) << ok_puts;
    EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
    EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos);
    auto listed = store_->List("datasets/fault/");
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->empty()) << listed->size() << " objects left behind";
  }
}

// Partitions lz4 cannot shrink make the ingest store the next ones raw
// without trying; once the data turns compressible, the next try finds it.
// The choice follows the input only: two ingests store the same bytes.
TEST_F(IngestTest, IncompressiblePartitionsPauseTheCodecDeterministically) {
  std::mt19937 rng(7);
  std::string text;
  const int kRandomParts = 20, kParts = 60, kRows = 8;
  for (int r = 0; r < kParts * kRows; ++r) {
    text += "1";
    for (uint32_t f = 1; f <= 30; ++f) {
      if (r < kRandomParts * kRows) {
        text += " " + std::to_string(f * 1000 + rng() % 1000) + ":" +
                std::to_string(rng() % 99991 / 7.0);
      } else {
        text += " " + std::to_string(f) + ":0.5";
      }
    }
    text += "\n";
  }
  const std::string path = Write("mixed.libsvm", text);
  std::vector<std::string> stored[2];
  for (int run = 0; run < 2; ++run) {
    IngestOptions o;
    o.inputs = {path};
    o.dataset = "mixed" + std::to_string(run);
    o.test_fraction = 0;
    o.rows_per_partition = kRows;
    ASSERT_TRUE(Ingest(*store_, o).ok());
    auto m = ReadManifest(*store_, o.dataset);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->train.size(), size_t{kParts});
    for (const PartitionInfo& p : m->train) {
      std::string bytes;
      ASSERT_TRUE(store_->Get(p.key, &bytes).ok());
      stored[run].push_back(bytes);
    }
  }
  EXPECT_EQ(stored[0], stored[1]);
  auto codec = [&](int part) { return static_cast<Codec>(stored[0][part][6]); };
  for (int part = 0; part < kRandomParts; ++part) EXPECT_EQ(codec(part), Codec::kNone) << part;
  int raw_after_turn = 0;
  for (int part = kRandomParts; part < kParts; ++part) raw_after_turn += codec(part) == Codec::kNone;
  EXPECT_GT(raw_after_turn, 0);
  EXPECT_LE(raw_after_turn, int{ingest_internal::PausingEncoder::kRawStreak});
  EXPECT_EQ(codec(kParts - 1), Codec::kLz4);
}

TEST_F(IngestTest, AnInputWithoutRowsIsAnErrorNamingIt) {
  IngestOptions o;
  o.format = Format::kLibsvm;
  o.dataset = "nothing";
  o.inputs = {Write("empty.txt", ""), Write("comments.txt", "# only a comment\n\n")};
  auto r = Ingest(*store_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("no rows in the input (" + o.inputs[0] + ", " + o.inputs[1]),
            std::string::npos)
      << r.status().ToString();
  EXPECT_TRUE(store_->List("datasets/nothing/")->empty());
  // Progress is reported, and rows in one of the inputs are enough.
  o.inputs.push_back(Write("one.txt", "1 3:1\n"));
  uint64_t calls = 0, rows = 0;
  o.on_progress = [&](const IngestProgress& p) {
    ++calls;
    rows = p.rows;
  };
  ASSERT_TRUE(Ingest(*store_, o).ok());
  EXPECT_EQ(calls, 3u);  // once per file at least
  EXPECT_EQ(rows, 1u);
}

}  // namespace
}  // namespace virga
