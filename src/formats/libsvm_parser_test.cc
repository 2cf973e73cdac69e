#include <gtest/gtest.h>

#include "formats/formats_test_util.h"

namespace virga::formats {
namespace {

using V = std::vector<uint32_t>;
using F = std::vector<float>;

TEST(LibsvmParser, BinaryFeatures) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  ParseOk(p.get(), "-1 3:1 11:1 14:1 ", &b);
  ASSERT_EQ(b.rows(), 1u);
  EXPECT_EQ(b.labels()[0], -1.0f);
  EXPECT_EQ(RowIndices(b, 0), (V{3, 11, 14}));
  EXPECT_EQ(RowValues(b, 0), (F{1, 1, 1}));
  EXPECT_TRUE(b.all_ones());
  EXPECT_EQ(p->index_bound(), 0u);
}

TEST(LibsvmParser, LabelsAndValuesAsGiven) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  ParseOk(p.get(), "+1 1:0.5 2:-3e-2 10:7", &b);
  ParseOk(p.get(), "0 0:1", &b);
  ParseOk(p.get(), "2.75 4294967295:1.25", &b);
  ParseOk(p.get(), "1", &b);  // a row without features
  ASSERT_EQ(b.rows(), 4u);
  EXPECT_EQ(b.labels(), (F{1, 0, 2.75f, 1}));
  EXPECT_EQ(RowIndices(b, 0), (V{1, 2, 10}));
  EXPECT_EQ(RowValues(b, 0), (F{0.5f, -0.03f, 7}));
  EXPECT_EQ(RowIndices(b, 1), (V{0}));  // 0-based indices are not shifted
  EXPECT_EQ(RowIndices(b, 2), (V{4294967295u}));
  EXPECT_EQ(RowValues(b, 2), (F{1.25f}));
  EXPECT_TRUE(RowIndices(b, 3).empty());
  EXPECT_FALSE(b.all_ones());
}

TEST(LibsvmParser, SeparatorsQidAndComments) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  ParseOk(p.get(), "1\t5:2\t\t6:3  ", &b);
  ParseOk(p.get(), "  0 qid:17 7:1 007:1 7:0.5", &b);  // duplicates and order kept
  ParseOk(p.get(), "1 8:1 # trailing comment 9:1", &b);
  ParseOk(p.get(), "1 8:1#glued comment", &b);
  ASSERT_EQ(b.rows(), 4u);
  EXPECT_EQ(RowIndices(b, 0), (V{5, 6}));
  EXPECT_EQ(RowValues(b, 0), (F{2, 3}));
  EXPECT_EQ(RowIndices(b, 1), (V{7, 7, 7}));
  EXPECT_EQ(RowValues(b, 1), (F{1, 1, 0.5f}));
  EXPECT_EQ(RowIndices(b, 2), (V{8}));
  EXPECT_EQ(RowIndices(b, 3), (V{8}));
}

TEST(LibsvmParser, LinesWithoutRows) {
  auto p = NewParser(Format::kLibsvm);
  ParseNoRow(p.get(), "");
  ParseNoRow(p.get(), "   \t ");
  ParseNoRow(p.get(), "# a comment 1:1");
  ParseNoRow(p.get(), "   # indented comment");
}

TEST(LibsvmParser, Errors) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  ParseOk(p.get(), "1 1:1 2:0.5", &b);
  ExpectError(p.get(), "x 1:1", "bad label 'x'", &b);
  ExpectError(p.get(), "nan 1:1", "label is NaN", &b);
  ExpectError(p.get(), "-inf 1:1", "label is infinite", &b);
  ExpectError(p.get(), "3:1 4:1", "missing label", &b);
  ExpectError(p.get(), "1 2:1 3:1 ab:1", "feature 3: bad index 'ab'", &b);
  ExpectError(p.get(), "1 2:0.5 5000000000:1", "feature 2: index 5000000000 out of range", &b);
  ExpectError(p.get(), "1 4294967296:1", "feature 1: index 4294967296 out of range", &b);
  ExpectError(p.get(), "1 -3:1", "feature 1: index -3 out of range", &b);
  ExpectError(p.get(), "1 :1", "feature 1: bad index ''", &b);
  ExpectError(p.get(), "1 1.5:1", "feature 1: bad index '1.5'", &b);
  ExpectError(p.get(), "1 1:nan", "feature 1: value is NaN", &b);
  ExpectError(p.get(), "1 1:1 2:inf", "feature 2: value is infinite", &b);
  ExpectError(p.get(), "1 1:1e999", "feature 1: value 1e999 out of range", &b);
  ExpectError(p.get(), "1 1:", "feature 1: bad value ''", &b);
  ExpectError(p.get(), "1 1:1x", "feature 1: bad value '1x'", &b);
  ExpectError(p.get(), "1 1:1:2", "feature 1: bad value '1:2'", &b);
  ExpectError(p.get(), "1 1:0.5 5", "feature 2: expected index:value, got '5'", &b);
  ExpectError(p.get(), "1 qid:3 x:1", "feature 1: bad index 'x'", &b);
  // Still usable after errors.
  ParseOk(p.get(), "0 9:2", &b);
  ASSERT_EQ(b.rows(), 2u);
  EXPECT_EQ(RowIndices(b, 1), (V{9}));
  EXPECT_EQ(RowValues(b, 1), (F{2}));
}

TEST(LibsvmParser, ErrorOnFirstRowLeavesEmptyBlock) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  ExpectError(p.get(), "1 1:1 2:1 3:z", "feature 3: bad value 'z'", &b);
  EXPECT_EQ(b.rows(), 0u);
  EXPECT_EQ(b.nnz(), 0u);
}

TEST(LibsvmParser, LongLineAndTinyValues) {
  auto p = NewParser(Format::kLibsvm);
  RowBlock b;
  std::string line = "1";
  for (int i = 0; i < 10000; ++i) line += " " + std::to_string(i * 3) + ":0.001";
  line += " 99999:1e-60";  // below float range: 0
  ParseOk(p.get(), line, &b);
  ASSERT_EQ(b.nnz(), 10001u);
  EXPECT_EQ(b.indices()[9999], 29997u);
  EXPECT_EQ(b.values()[9999], 0.001f);
  EXPECT_EQ(b.values()[10000], 0.0f);
}

}  // namespace
}  // namespace virga::formats
