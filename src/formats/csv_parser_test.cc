#include <gtest/gtest.h>

#include "formats/formats_test_util.h"

namespace virga::formats {
namespace {

using V = std::vector<uint32_t>;
using F = std::vector<float>;

ParseOptions Csv(std::string label = "0", CsvHeader header = CsvHeader::kAuto, char delim = ',') {
  ParseOptions o;
  o.csv_label_column = std::move(label);
  o.csv_header = header;
  o.csv_delimiter = delim;
  return o;
}

TEST(CsvParser, HeaderAndLabelByName) {
  auto p = NewParser(Format::kCsv, Csv("y"));
  EXPECT_EQ(p->index_bound(), 0u);  // unknown before the first line
  ParseNoRow(p.get(), "a, y ,\"b\",c");
  EXPECT_EQ(p->index_bound(), 3u);
  RowBlock b;
  ParseOk(p.get(), "0.5,1,0,-2e3", &b);
  ParseOk(p.get(), " 0 , 0 , 7 ,0", &b);
  ASSERT_EQ(b.rows(), 2u);
  EXPECT_EQ(b.labels(), (F{1, 0}));
  // Every non-label column, zeros included, at its position among them.
  EXPECT_EQ(RowIndices(b, 0), (V{0, 1, 2}));
  EXPECT_EQ(RowValues(b, 0), (F{0.5f, 0, -2000}));
  EXPECT_EQ(RowIndices(b, 1), (V{0, 1, 2}));
  EXPECT_EQ(RowValues(b, 1), (F{0, 7, 0}));
}

TEST(CsvParser, NoHeaderLabelByIndex) {
  auto p = NewParser(Format::kCsv, Csv("2"));
  RowBlock b;
  ParseOk(p.get(), "1.000000000000000000e+00,2,3,4", &b);  // numeric: a data row
  ParseOk(p.get(), "5,6,7,8", &b);
  EXPECT_EQ(p->index_bound(), 3u);
  EXPECT_EQ(b.labels(), (F{3, 7}));
  EXPECT_EQ(RowValues(b, 0), (F{1, 2, 4}));
  EXPECT_EQ(RowValues(b, 1), (F{5, 6, 8}));
}

TEST(CsvParser, NamedColumnWinsOverIndex) {
  auto p = NewParser(Format::kCsv, Csv("1"));
  ParseNoRow(p.get(), "x,y,1");
  RowBlock b;
  ParseOk(p.get(), "10,20,30", &b);
  EXPECT_EQ(b.labels(), (F{30}));
  EXPECT_EQ(RowValues(b, 0), (F{10, 20}));
}

TEST(CsvParser, ExplicitHeaderModesAndDelimiters) {
  auto present = NewParser(Format::kCsv, Csv("0", CsvHeader::kPresent, ';'));
  ParseNoRow(present.get(), "1;2;3");  // a numeric header
  RowBlock b;
  ParseOk(present.get(), "1;2;3", &b);
  EXPECT_EQ(RowValues(b, 0), (F{2, 3}));

  auto tabs = NewParser(Format::kCsv, Csv("label", CsvHeader::kAuto, '\t'));
  ParseNoRow(tabs.get(), "f1\tlabel");
  ParseNoRow(tabs.get(), "");
  ParseOk(tabs.get(), "0.25\t1", &b);
  EXPECT_EQ(b.labels().back(), 1.0f);
  EXPECT_EQ(RowValues(b, 1), (F{0.25f}));

  auto absent = NewParser(Format::kCsv, Csv("0", CsvHeader::kAbsent));
  RowBlock c;
  ExpectError(absent.get(), "label,f", "column 0: bad value 'label'", &c);
}

TEST(CsvParser, RowErrors) {
  auto p = NewParser(Format::kCsv, Csv("label"));
  ParseNoRow(p.get(), "label,a,b");
  RowBlock b;
  ParseOk(p.get(), "1,2,3", &b);
  ExpectError(p.get(), "1,2", "expected 3 fields (as in the first line), found 2", &b);
  ExpectError(p.get(), "1,2,3,4", "expected 3 fields (as in the first line), found 4", &b);
  ExpectError(p.get(), "1,,3", "column 'a' (1): empty value", &b);
  ExpectError(p.get(), "1,2, ", "column 'b' (2): empty value", &b);
  ExpectError(p.get(), ",2,3", "column 'label' (0): empty value", &b);
  ExpectError(p.get(), "1,2,x", "column 'b' (2): bad value 'x'", &b);
  ExpectError(p.get(), "1,nan,3", "column 'a' (1): value is NaN", &b);
  ExpectError(p.get(), "inf,1,3", "column 'label' (0): value is infinite", &b);
  ExpectError(p.get(), "1,2,\"3\"", "column 'b' (2): bad value '\"3\"'", &b);
  EXPECT_EQ(b.rows(), 1u);

  auto q = NewParser(Format::kCsv, Csv("0"));
  RowBlock c;
  ParseOk(q.get(), "1,2,3", &c);
  ExpectError(q.get(), "1,,3", "column 1: empty value", &c);
}

TEST(CsvParser, LabelColumnErrors) {
  RowBlock b;
  auto by_name = NewParser(Format::kCsv, Csv("y"));
  ExpectError(by_name.get(), "1,2,3", "label column 'y' is a name but the file has no header", &b);
  auto missing = NewParser(Format::kCsv, Csv("y"));
  ExpectError(missing.get(), "a,b,c", "label column 'y' is not in the header", &b);
  auto range = NewParser(Format::kCsv, Csv("3"));
  ExpectError(range.get(), "1,2,3", "label column 3 is out of range: the line has 3 fields", &b);
  EXPECT_EQ(range->index_bound(), 0u);
}

TEST(CsvParser, BadOptions) {
  for (char d : {'\n', '"', '.', '5', '-'}) {
    EXPECT_TRUE(
        MakeParser(Format::kCsv, Csv("0", CsvHeader::kAuto, d)).status().IsInvalidArgument())
        << d;
  }
  EXPECT_TRUE(MakeParser(Format::kCsv, Csv("")).status().IsInvalidArgument());
}

}  // namespace
}  // namespace virga::formats
