// Parses the real public data sets in ../shared/data (never copied into the
// repo) end to end: every line must parse. Skipped when they are absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "formats/formats_test_util.h"
#include "virga/line_reader.h"

namespace virga::formats {
namespace {

std::string SharedData() {
  const char* env = std::getenv("VIRGA_SHARED_DATA");
  return env != nullptr && *env != '\0' ? env : "/work/shared/data";
}

struct Parsed {
  uint64_t rows = 0;
  uint64_t nnz = 0;
  uint32_t max_index = 0;
  double label_sum = 0;
};

// Parses all of `path`; fails the test on the first bad line.
Parsed ParseFile(const std::string& path, Format format, const ParseOptions& options = {}) {
  Parsed out;
  auto parser = NewParser(format, options);
  auto reader = LineReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!parser || !reader.ok()) return out;
  RowBlock block;
  std::string_view line;
  while (true) {
    Result<bool> more = (*reader)->Next(&line);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    bool added = false;
    Status s = parser->ParseLine(line, &block, &added);
    if (!s.ok()) {
      ADD_FAILURE() << path << ":" << (*reader)->line_number() << ": " << s.message();
      break;
    }
    if (block.rows() >= 4096) {
      out.rows += block.rows();
      out.nnz += block.nnz();
      for (uint32_t i : block.indices()) out.max_index = std::max(out.max_index, i);
      for (float l : block.labels()) out.label_sum += l;
      block.Clear();
    }
  }
  out.rows += block.rows();
  out.nnz += block.nnz();
  for (uint32_t i : block.indices()) out.max_index = std::max(out.max_index, i);
  for (float l : block.labels()) out.label_sum += l;
  return out;
}

#define REQUIRE_SHARED_FILE(path)                       \
  do {                                                  \
    if (!std::filesystem::exists(path)) {               \
      GTEST_SKIP() << "shared data absent: " << (path); \
    }                                                   \
  } while (0)

TEST(SharedData, LibsvmA9a) {
  const std::string path = SharedData() + "/libsvm-a9a/a9a";
  REQUIRE_SHARED_FILE(path);
  const Parsed p = ParseFile(path, Format::kLibsvm);
  EXPECT_EQ(p.rows, 32561u);
  EXPECT_LE(p.max_index, 123u);
  EXPECT_GT(p.nnz, p.rows * 13);
}

TEST(SharedData, CriteoSample) {
  const std::string path = SharedData() + "/criteo-kaggle-sample/criteo_train_7200.tsv";
  REQUIRE_SHARED_FILE(path);
  const Parsed p = ParseFile(path, Format::kCriteo);
  EXPECT_EQ(p.rows, 7200u);
  EXPECT_EQ(p.nnz, 7200u * 39);
  EXPECT_EQ(p.label_sum, 1549);  // positives, per SOURCE.md
  EXPECT_LT(p.max_index, 1u << 20);
}

TEST(SharedData, MovieLens100k) {
  const std::string path = SharedData() + "/movielens-100k/u.data";
  REQUIRE_SHARED_FILE(path);
  const Parsed p = ParseFile(path, Format::kRatings);
  EXPECT_EQ(p.rows, 100000u);
  EXPECT_EQ(p.nnz, 200000u);
  EXPECT_EQ(p.max_index, 2 * 1682u + 1);  // items 1..1682 (keys 2i + 1), users 1..943 (2u)
}

TEST(SharedData, MovieLensLatestSmallCsv) {
  const std::string path = SharedData() + "/movielens-latest-small-2016/ratings.csv";
  REQUIRE_SHARED_FILE(path);
  const Parsed p = ParseFile(path, Format::kRatings);
  EXPECT_EQ(p.rows, 100004u);  // the header is skipped
  EXPECT_EQ(p.nnz, 200008u);
}

TEST(SharedData, HiggsDenseCsv) {
  const std::string path = SharedData() + "/higgs-sample/higgs_2000.csv";
  REQUIRE_SHARED_FILE(path);
  const Parsed p = ParseFile(path, Format::kCsv);
  EXPECT_EQ(p.rows, 2000u);
  EXPECT_EQ(p.nnz, 2000u * 28);  // zeros are kept
  EXPECT_EQ(p.max_index, 27u);
  EXPECT_EQ(p.label_sum, 1067);
}

// The other files of the shared set parse without error too.
TEST(SharedData, EveryOtherFile) {
  const std::pair<const char*, Format> files[] = {
      {"libsvm-a9a/a9a.t", Format::kLibsvm},
      {"libsvm-a8a/a8a", Format::kLibsvm},
      {"libsvm-a8a/a8a.t", Format::kLibsvm},
      {"libsvm-w8a/w8a", Format::kLibsvm},
      {"libsvm-agaricus/agaricus.txt.train", Format::kLibsvm},
      {"libsvm-agaricus/agaricus.txt.test", Format::kLibsvm},
      {"rcv1-small/rcv1_first100.libsvm", Format::kLibsvm},
      {"criteo-kaggle-sample/criteo_dev_409.tsv", Format::kCriteo},
      {"criteo-kaggle-sample/criteo_test_391.tsv", Format::kCriteo},
      {"movielens-100k/u1.base", Format::kRatings},
      {"movielens-100k/u1.test", Format::kRatings},
  };
  int parsed = 0;
  for (const auto& [name, format] : files) {
    const std::string path = SharedData() + "/" + name;
    if (!std::filesystem::exists(path)) continue;
    SCOPED_TRACE(path);
    EXPECT_GT(ParseFile(path, format).rows, 0u);
    ++parsed;
  }
  if (parsed == 0) GTEST_SKIP() << "shared data absent: " << SharedData();
}

}  // namespace
}  // namespace virga::formats
