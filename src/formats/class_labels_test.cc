#include <gtest/gtest.h>

#include "formats/formats_test_util.h"

namespace virga::formats {
namespace {

TEST(ClassLabels, LibsvmAndCsvLabelsAreCheckedAgainstTheClasses) {
  ParseOptions o;
  o.classes = 3;
  auto p = MakeParser(Format::kLibsvm, o);
  ASSERT_TRUE(p.ok());
  RowBlock b;
  ParseOk(p->get(), "0 1:1", &b);
  ParseOk(p->get(), "2 4:0.5", &b);
  ExpectError(p->get(), "3 1:1", "label 3 is not a class of 0..2 (--classes 3)", &b);
  ExpectError(p->get(), "1.5 1:1", "label 1.5 is not a class of 0..2 (--classes 3)", &b);
  ExpectError(p->get(), "-1 1:1", "label -1 is not a class of 0..2 (--classes 3)", &b);
  EXPECT_EQ(b.rows(), 2u);  // the rejected rows are dropped whole
  EXPECT_EQ(b.nnz(), 2u);
  ParseNoRow(p->get(), "# a comment");

  auto csv = MakeParser(Format::kCsv, o);
  ASSERT_TRUE(csv.ok());
  RowBlock c;
  ParseOk(csv->get(), "1,0.5,2", &c);
  ExpectError(csv->get(), "7,0.5,2", "label 7 is not a class of 0..2 (--classes 3)", &c);
  EXPECT_EQ(c.rows(), 1u);
}

TEST(ClassLabels, OffByDefault) {
  auto p = MakeParser(Format::kLibsvm, ParseOptions{});
  RowBlock b;
  ParseOk(p->get(), "17.5 1:1", &b);
  EXPECT_EQ(b.labels().back(), 17.5f);
}

}  // namespace
}  // namespace virga::formats
