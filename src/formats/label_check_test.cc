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

TEST(LabelTasks, BinaryLabelsAreZeroOneOrMinusOnePlusOneNotBoth) {
  ParseOptions o;
  o.task = LabelTask::kBinary;
  auto p = MakeParser(Format::kLibsvm, o);
  ASSERT_TRUE(p.ok());
  RowBlock b;
  ParseOk(p->get(), "1 1:1", &b);
  ParseOk(p->get(), "0 1:1", &b);
  ExpectError(p->get(), "7 1:1", "label 7 is not binary (0/1 or -1/+1; --task binary)", &b);
  ExpectError(p->get(), "0.5 1:1", "label 0.5 is not binary (0/1 or -1/+1; --task binary)", &b);
  ExpectError(p->get(), "-1 1:1",
              "label -1 mixes -1/+1 with the 0/1 labels of earlier lines (--task binary)",
              &b);
  EXPECT_EQ(b.rows(), 2u);

  auto check = LabelCheck::Make(o);  // a fresh input keeps its own convention
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->Check(-1).ok());
  EXPECT_TRUE(check->Check(1).ok());
  EXPECT_FALSE(check->Check(0).ok());
}

TEST(LabelTasks, MulticlassWithoutClassesTakesClassNumbers) {
  ParseOptions o;
  o.task = LabelTask::kMulticlass;
  auto check = LabelCheck::Make(o);
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->Check(0).ok());
  EXPECT_TRUE(check->Check(41).ok());
  EXPECT_EQ(check->Check(2.5f).message(),
            "label 2.5 is not a class number (an integer >= 0; --task multiclass)");
  EXPECT_FALSE(check->Check(-1).ok());
}

TEST(LabelTasks, RegressionTakesAnyFiniteLabelAndClassesFitOnlyMulticlass) {
  ParseOptions o;
  o.task = LabelTask::kRegression;
  auto p = MakeParser(Format::kRatings, o);
  ASSERT_TRUE(p.ok());
  RowBlock b;
  ParseOk(p->get(), "1\t2\t3.75", &b);
  EXPECT_EQ(b.labels().back(), 3.75f);
  o.classes = 3;
  auto bad = MakeParser(Format::kLibsvm, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--classes 3 declares a multiclass task, not regression");
  EXPECT_EQ(ParseLabelTaskName("binary").value(), LabelTask::kBinary);
  EXPECT_EQ(ParseLabelTaskName("classes").status().message(),
            "task 'classes': expected any, binary, regression or multiclass");
}

TEST(ClassLabels, OffByDefault) {
  auto p = MakeParser(Format::kLibsvm, ParseOptions{});
  RowBlock b;
  ParseOk(p->get(), "17.5 1:1", &b);
  EXPECT_EQ(b.labels().back(), 17.5f);
}

}  // namespace
}  // namespace virga::formats
