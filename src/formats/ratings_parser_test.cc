#include <gtest/gtest.h>

#include "formats/formats_test_util.h"

namespace virga::formats {
namespace {

using V = std::vector<uint32_t>;
using F = std::vector<float>;

TEST(RatingsParser, MovieLens100kTabs) {
  auto p = NewParser(Format::kRatings);
  RowBlock b;
  ParseOk(p.get(), "196\t242\t3\t881250949", &b);
  ParseOk(p.get(), "186\t302\t3.5", &b);  // timestamp optional
  ASSERT_EQ(b.rows(), 2u);
  EXPECT_EQ(b.labels(), (F{3, 3.5f}));
  EXPECT_EQ(RowIndices(b, 0), (V{2 * 196, 2 * 242 + 1}));  // user first, item second
  EXPECT_EQ(RowValues(b, 0), (F{1, 1}));
  EXPECT_EQ(RowIndices(b, 1), (V{2 * 186, 2 * 302 + 1}));
  EXPECT_EQ(p->index_bound(), 0u);
}

TEST(RatingsParser, CsvWithHeader) {
  auto p = NewParser(Format::kRatings);
  ParseNoRow(p.get(), "userId,movieId,rating,timestamp");
  RowBlock b;
  ParseOk(p.get(), "1,31,2.5,1260759144", &b);
  ParseOk(p.get(), "0,2147483647,0.5,1260759179", &b);
  EXPECT_EQ(b.labels(), (F{2.5f, 0.5f}));
  EXPECT_EQ(RowIndices(b, 0), (V{2, 63}));
  EXPECT_EQ(RowIndices(b, 1), (V{0, 4294967295u}));  // the largest item id
}

TEST(RatingsParser, DoubleColonAndBlankLines) {
  auto p = NewParser(Format::kRatings);
  ParseNoRow(p.get(), "");
  RowBlock b;
  ParseOk(p.get(), "1::1193::5::978300760", &b);
  ParseNoRow(p.get(), "  ");
  ParseOk(p.get(), "6040::858::4::956703932", &b);
  EXPECT_EQ(b.labels(), (F{5, 4}));
  EXPECT_EQ(RowIndices(b, 1), (V{2 * 6040, 2 * 858 + 1}));
}

TEST(RatingsParser, Errors) {
  auto p = NewParser(Format::kRatings);
  RowBlock b;
  ParseOk(p.get(), "1,2,3", &b);
  ExpectError(p.get(), "1,2",
              "expected 3 or 4 fields (user, item, rating[, timestamp]) separated by ',', found 2",
              &b);
  ExpectError(p.get(), "1,2,3,4,5",
              "expected 3 or 4 fields (user, item, rating[, timestamp]) separated by ',', found 5",
              &b);
  ExpectError(p.get(), "1\t2\t3",
              "expected 3 or 4 fields (user, item, rating[, timestamp]) separated by ',', found 1",
              &b);
  ExpectError(p.get(), "userId,movieId,rating", "bad user id 'userId'", &b);  // not first
  ExpectError(p.get(), "u1,2,3", "bad user id 'u1'", &b);
  ExpectError(p.get(), "-1,2,3", "user id -1 out of range", &b);
  ExpectError(p.get(), "1,5000000000,3", "item id 5000000000 out of range", &b);
  ExpectError(p.get(), "2147483648,1,3", "user id 2147483648 out of range (ids are 0..2147483647)",
              &b);
  ExpectError(p.get(), "1,2147483648,3", "item id 2147483648 out of range (ids are 0..2147483647)",
              &b);
  ExpectError(p.get(), "1,2.5,3", "bad item id '2.5'", &b);
  ExpectError(p.get(), "1,2,", "bad rating ''", &b);
  ExpectError(p.get(), "1,2,nan", "rating is NaN", &b);
  ExpectError(p.get(), "1,2,inf", "rating is infinite", &b);
  ExpectError(p.get(), "1,2,3,x", "bad timestamp 'x'", &b);
  EXPECT_EQ(b.rows(), 1u);
}

TEST(RatingsParser, UndetectableSeparator) {
  auto p = NewParser(Format::kRatings);
  RowBlock b;
  ExpectError(p.get(), "1 2 3",
              "expected 3 or 4 fields (user, item, rating[, timestamp]) separated by tab, ',' or "
              "'::', found 1",
              &b);
  ParseOk(p.get(), "1\t2\t3", &b);  // the first good line decides
  EXPECT_EQ(RowIndices(b, 0), (V{2, 5}));
}

}  // namespace
}  // namespace virga::formats
