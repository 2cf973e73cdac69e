#include "formats/number_parse.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>
#include <string>

namespace virga::formats {
namespace {

float F(std::string_view s) {
  float f = -123;
  EXPECT_EQ(ParseFloat(s, &f), NumStatus::kOk) << s;
  return f;
}

TEST(NumberParse, FloatSyntax) {
  EXPECT_EQ(F("1"), 1.0f);
  EXPECT_EQ(F("+1"), 1.0f);
  EXPECT_EQ(F("-1"), -1.0f);
  EXPECT_EQ(F("0.5"), 0.5f);
  EXPECT_EQ(F(".5"), 0.5f);
  EXPECT_EQ(F("2."), 2.0f);
  EXPECT_EQ(F("1e3"), 1000.0f);
  EXPECT_EQ(F("-2.5E-2"), -0.025f);
  EXPECT_EQ(F("1.000000000000000000e+00"), 1.0f);
  EXPECT_EQ(F("123456789012345678901234567890"), 1.2345679e29f);
  EXPECT_TRUE(std::signbit(F("-0")));
  EXPECT_EQ(F("1e-50"), 0.0f);   // underflow to zero, not an error
  EXPECT_EQ(F("1e-400"), 0.0f);  // below even double's range
  EXPECT_GT(F("1e-40"), 0.0f);   // subnormal
}

TEST(NumberParse, FloatRejects) {
  float f = 7;
  for (std::string_view s :
       {"", " 1", "1 ", "1x", "x", "-", "+", ".", "+-1", "-+1", "++1", "0x10", "1,5", "1e", "e5"}) {
    EXPECT_EQ(ParseFloat(s, &f), NumStatus::kBad) << "'" << s << "'";
  }
  EXPECT_EQ(ParseFloat("nan", &f), NumStatus::kNaN);
  EXPECT_EQ(ParseFloat("-NaN", &f), NumStatus::kNaN);
  EXPECT_EQ(ParseFloat("inf", &f), NumStatus::kInfinite);
  EXPECT_EQ(ParseFloat("-Infinity", &f), NumStatus::kInfinite);
  EXPECT_EQ(ParseFloat("1e39", &f), NumStatus::kOutOfRange);
  EXPECT_EQ(ParseFloat("-1e400", &f), NumStatus::kOutOfRange);
  EXPECT_EQ(f, 7.0f);  // untouched on failure
}

// The fast path must round exactly like from_chars.
TEST(NumberParse, FastPathMatchesFromChars) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    std::string s = rng() % 2 ? "-" : "";
    const int int_digits = static_cast<int>(rng() % 9);
    const int frac_digits = static_cast<int>(rng() % 12);
    for (int d = 0; d < int_digits; ++d) s += static_cast<char>('0' + rng() % 10);
    if (frac_digits > 0 || int_digits == 0) s += '.';
    for (int d = 0; d < std::max(frac_digits, int_digits == 0 ? 1 : 0); ++d) {
      s += static_cast<char>('0' + rng() % 10);
    }
    float expected = 0, got = 0;
    std::from_chars(s.data(), s.data() + s.size(), expected);
    ASSERT_EQ(ParseFloat(s, &got), NumStatus::kOk) << s;
    ASSERT_EQ(got, expected) << s;
    ASSERT_EQ(std::signbit(got), std::signbit(expected)) << s;
  }
}

TEST(NumberParse, Index) {
  uint32_t v = 9;
  EXPECT_EQ(ParseIndex("0", &v), NumStatus::kOk);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(ParseIndex("4294967295", &v), NumStatus::kOk);
  EXPECT_EQ(v, 4294967295u);
  EXPECT_EQ(ParseIndex("000000000000000123", &v), NumStatus::kOk);
  EXPECT_EQ(v, 123u);
  EXPECT_EQ(ParseIndex("4294967296", &v), NumStatus::kOutOfRange);
  EXPECT_EQ(ParseIndex("99999999999999999999999", &v), NumStatus::kOutOfRange);
  EXPECT_EQ(ParseIndex("-1", &v), NumStatus::kOutOfRange);
  for (std::string_view s : {"", "-", "+1", "1.0", "1e3", " 1", "a", "-a", "1-"}) {
    EXPECT_EQ(ParseIndex(s, &v), NumStatus::kBad) << "'" << s << "'";
  }
}

TEST(NumberParse, Int64AndDouble) {
  int64_t i = 0;
  EXPECT_EQ(ParseInt64("-9223372036854775808", &i), NumStatus::kOk);
  EXPECT_EQ(i, INT64_MIN);
  EXPECT_EQ(ParseInt64("9223372036854775808", &i), NumStatus::kOutOfRange);
  EXPECT_EQ(ParseInt64("+1", &i), NumStatus::kBad);
  EXPECT_EQ(ParseInt64("1.0", &i), NumStatus::kBad);
  EXPECT_EQ(ParseInt64("", &i), NumStatus::kBad);
  double d = 0;
  EXPECT_EQ(ParseDouble("1260759144", &d), NumStatus::kOk);
  EXPECT_EQ(d, 1260759144.0);
  EXPECT_EQ(ParseDouble("nan", &d), NumStatus::kNaN);
  EXPECT_EQ(ParseDouble("1e999", &d), NumStatus::kOutOfRange);
}

TEST(NumberParse, Messages) {
  EXPECT_EQ(NumberError(NumStatus::kBad, "index", "ab"), "bad index 'ab'");
  EXPECT_EQ(NumberError(NumStatus::kOutOfRange, "index", "5000000000"),
            "index 5000000000 out of range");
  EXPECT_EQ(NumberError(NumStatus::kNaN, "value", "nan"), "value is NaN");
  EXPECT_EQ(NumberError(NumStatus::kInfinite, "value", "inf"), "value is infinite");
  EXPECT_EQ(NumberError(NumStatus::kBad, "v", std::string(50, 'x')),
            "bad v '" + std::string(40, 'x') + "...'");
}

}  // namespace
}  // namespace virga::formats
