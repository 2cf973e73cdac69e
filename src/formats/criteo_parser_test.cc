#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <cstring>

#include "formats/criteo_encoding.h"
#include "formats/formats_test_util.h"

namespace virga::formats {
namespace {

// The encoding of docs/formats.md, written again independently of
// criteo_encoding.cc.
int64_t DocCode(const std::string& field) {
  if (field.empty()) return INT64_MIN;
  const int64_t v = std::stoll(field);
  if (v <= 2) return v;
  if (v >= 4294967296LL) return 1999;
  return 1000 + static_cast<int64_t>(std::floor(std::pow(std::log(static_cast<double>(v)), 2)));
}

uint32_t DocIndex(int field, const std::string& text, int bits) {
  uint64_t h;
  if (field <= 13) {
    const uint64_t code = static_cast<uint64_t>(DocCode(text));
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(code >> (8 * i));
    h = XXH3_64bits_withSeed(le, 8, field);
  } else {
    h = XXH3_64bits_withSeed(text.data(), text.size(), field);
  }
  return static_cast<uint32_t>(h >> (64 - bits));
}

std::vector<std::string> SampleFields() {
  // clang-format off
  std::vector<std::string> f = {"1",  "0",    "-1", "", "3",       "1382", "4294967295",
                                "2",  "4294967296", "9223372036854775807", "-3", "", "15", "7"};
  const char* cats[] = {"68fd1e64", "80e26c9b", "", "7b4723c4", "25c83c98", "7e0ccccf",
                        "de7995b8", "1f89b562", "a73ee510", "a8cd5504", "b2cb9c98", "",
                        "2824a5f6", "1adce6ef", "8ba8b39a", "891b62e7", "e5ba7672", "f54016b9",
                        "21ddcdc9", "b1252a9d", "07b5194c", "", "3a171ecb", "c5c50484",
                        "e8b83407", "any text, even spaces"};
  // clang-format on
  for (const char* c : cats) f.emplace_back(c);
  return f;
}

std::string Join(const std::vector<std::string>& f) {
  std::string line;
  for (size_t i = 0; i < f.size(); ++i) line += (i ? "\t" : "") + f[i];
  return line;
}

TEST(CriteoParser, IndicesFollowTheDocumentedEncoding) {
  const std::vector<std::string> f = SampleFields();
  ASSERT_EQ(f.size(), 40u);
  for (int bits : {1, 7, 20, 24, 32}) {
    ParseOptions o;
    o.hash_bits = bits;
    auto p = NewParser(Format::kCriteo, o);
    EXPECT_EQ(p->index_bound(), uint64_t{1} << bits);
    RowBlock b;
    ParseOk(p.get(), Join(f), &b);
    ASSERT_EQ(b.rows(), 1u);
    EXPECT_EQ(b.labels()[0], 1.0f);
    ASSERT_EQ(b.nnz(), 39u);
    for (int field = 1; field <= 39; ++field) {
      EXPECT_EQ(b.indices()[field - 1], DocIndex(field, f[field], bits))
          << "bits " << bits << " field " << field;
    }
    EXPECT_TRUE(b.all_ones());
  }
}

TEST(CriteoParser, EveryTabPositionAndIntegerValueFollowsTheEncoding) {
  // Field widths varied so that tabs fall at every offset of a 16-byte block
  // (the vectorized split), and integer values over every bucket kind: small,
  // negative beyond the table's range, logarithmic, huge, missing.
  const int64_t ints[] = {-100, -9, -8, -1, 0, 1, 2, 3, 7, 1000, 65535, 4294967295LL,
                          4294967296LL};
  for (int bits : {5, 20}) {
    ParseOptions o;
    o.hash_bits = bits;
    auto p = NewParser(Format::kCriteo, o);
    for (int shift = 0; shift < 40; ++shift) {
      std::vector<std::string> f(40);
      f[0] = shift % 2 ? "1" : "0";
      for (int i = 1; i <= 13; ++i) {
        const int pick = (i * 7 + shift) % 15;
        f[i] = pick >= 13 ? "" : std::to_string(ints[pick]);
      }
      for (int i = 14; i < 40; ++i) f[i] = std::string(static_cast<size_t>((i * 3 + shift) % 19), 'a' + i % 26);
      RowBlock b;
      ParseOk(p.get(), Join(f), &b);
      ASSERT_EQ(b.nnz(), 39u);
      for (int field = 1; field <= 39; ++field) {
        EXPECT_EQ(b.indices()[field - 1], DocIndex(field, f[field], bits))
            << "bits " << bits << " shift " << shift << " field " << field << " '" << f[field] << "'";
      }
      // One tab more or less is an error wherever it falls.
      RowBlock bad;
      bool added = false;
      EXPECT_FALSE(p->ParseLine(Join(f) + "\t", &bad, &added).ok()) << shift;
      f.pop_back();
      EXPECT_FALSE(p->ParseLine(Join(f), &bad, &added).ok()) << shift;
    }
  }
}

TEST(CriteoEncoding, IntIndexTableEqualsTheHash) {
  for (int bits : {1, 20, 32}) {
    const criteo::IntIndexTable table(bits);
    for (int field = 1; field <= 13; ++field) {
      std::vector<int64_t> codes = {criteo::kMissingIntCode, criteo::kHugeIntCode, -1000, 3, 1000, 1492};
      for (int64_t c = -12; c <= 2; ++c) codes.push_back(c);
      for (int64_t c = 1001; c <= 1491; ++c) codes.push_back(c);
      for (int64_t c : codes)
        ASSERT_EQ(table.Index(field, c), criteo::IntFieldIndex(field, c, bits))
            << "bits " << bits << " field " << field << " code " << c;
    }
  }
}

TEST(CriteoParser, ValuesAreOnesOnlyForCriteo) {
  // An ingest keeps no feature statistics for such data (PartitionWriter).
  EXPECT_TRUE(NewParser(Format::kCriteo)->values_are_ones());
  EXPECT_FALSE(NewParser(Format::kLibsvm)->values_are_ones());
  EXPECT_FALSE(NewParser(Format::kCsv)->values_are_ones());
}

TEST(CriteoParser, AllMissingRow) {
  auto p = NewParser(Format::kCriteo);
  RowBlock b;
  std::vector<std::string> f(40);
  f[0] = "0";
  ParseOk(p.get(), Join(f), &b);
  EXPECT_EQ(b.labels()[0], 0.0f);
  ASSERT_EQ(b.nnz(), 39u);
  for (int field = 1; field <= 39; ++field) {
    EXPECT_EQ(b.indices()[field - 1], DocIndex(field, "", 20)) << field;
  }
}

TEST(CriteoEncoding, IntCodeBuckets) {
  using criteo::IntCode;
  EXPECT_EQ(IntCode(-5), -5);
  EXPECT_EQ(IntCode(0), 0);
  EXPECT_EQ(IntCode(2), 2);
  EXPECT_EQ(IntCode(INT64_MIN), INT64_MIN);  // the same code as a missing field (documented)
  EXPECT_EQ(IntCode(int64_t{1} << 32), 1999);
  EXPECT_EQ(IntCode(INT64_MAX), 1999);
  // Smallest v with ln(v)^2 >= k, computed with 60-digit decimal arithmetic.
  const std::pair<int64_t, int64_t> thresholds[] = {
      {1, 3},           {2, 5},          {5, 10},           {10, 24},
      {100, 22027},     {300, 33281362}, {461, 2112019749}, {473, 2787924282},
      {491, 4200711725}};
  for (auto [k, t] : thresholds) {
    EXPECT_EQ(IntCode(t), 1000 + k) << t;
    if (t - 1 > 2) {
      EXPECT_EQ(IntCode(t - 1), 1000 + k - 1) << t - 1;
    }
  }
  EXPECT_EQ(IntCode((int64_t{1} << 32) - 1), 1491);
  EXPECT_STREQ(criteo::FieldName(0), "label");
  EXPECT_STREQ(criteo::FieldName(13), "I13");
  EXPECT_STREQ(criteo::FieldName(14), "C1");
  EXPECT_STREQ(criteo::FieldName(39), "C26");
}

// The examples of docs/formats.md: pins the encoding (and the xxhash build).
TEST(CriteoEncoding, GoldenVectors) {
  using criteo::HashCategorical;
  using criteo::HashIntCode;
  EXPECT_EQ(HashIntCode(1, 1), 0x85671091eda75eb5ull);
  EXPECT_EQ(HashIntCode(2, 0), 0x13c3c355e8ded66aull);
  EXPECT_EQ(HashIntCode(3, -1), 0xa69296be964db6e3ull);
  EXPECT_EQ(HashIntCode(4, criteo::kMissingIntCode), 0x037ef72576770dd5ull);
  EXPECT_EQ(criteo::IntCode(1382), 1052);
  EXPECT_EQ(HashIntCode(5, 1052), 0x81ab4d87c527890dull);
  EXPECT_EQ(HashCategorical(14, "68fd1e64"), 0x9b5d1194206cdbb6ull);
  EXPECT_EQ(HashCategorical(39, ""), 0xbab4ecd93211fbaeull);
  EXPECT_EQ(criteo::IndexOfHash(0x85671091eda75eb5ull, 20), 546417u);
  EXPECT_EQ(criteo::IndexOfHash(0x85671091eda75eb5ull, 32), 2238124177u);
  EXPECT_EQ(criteo::CatFieldIndex(39, "", 20), 764750u);
  EXPECT_EQ(criteo::IntFieldIndex(4, criteo::kMissingIntCode, 32), 58652453u);
}

TEST(CriteoParser, BlankLineHoldsNoRow) {
  auto p = NewParser(Format::kCriteo);
  ParseNoRow(p.get(), "");
}

TEST(CriteoParser, Errors) {
  auto p = NewParser(Format::kCriteo);
  RowBlock b;
  std::vector<std::string> f = SampleFields();
  ParseOk(p.get(), Join(f), &b);

  std::vector<std::string> g(f.begin(), f.end() - 1);
  ExpectError(p.get(), Join(g), "expected 40 tab-separated fields, found 39", &b);
  g = f;
  g.push_back("x");
  ExpectError(p.get(), Join(g), "expected 40 tab-separated fields, found 41", &b);
  ExpectError(p.get(), "1 2 3", "expected 40 tab-separated fields, found 1", &b);
  ExpectError(p.get(), "1,2,3,4", "expected 40 tab-separated fields, found 1", &b);

  g = f;
  g[0] = "2";
  ExpectError(p.get(), Join(g), "bad label '2' (expected 0 or 1)", &b);
  g[0] = "";
  ExpectError(p.get(), Join(g), "missing label", &b);
  g[0] = "1.0";
  ExpectError(p.get(), Join(g), "bad label '1.0' (expected 0 or 1)", &b);

  g = f;
  g[3] = "1.5";
  ExpectError(p.get(), Join(g), "field 3 (I3): bad integer '1.5'", &b);
  g = f;
  g[13] = "x";
  ExpectError(p.get(), Join(g), "field 13 (I13): bad integer 'x'", &b);
  g = f;
  g[1] = "9223372036854775808";
  ExpectError(p.get(), Join(g), "field 1 (I1): integer 9223372036854775808 out of range", &b);
  g = f;
  g[5] = " 3";
  ExpectError(p.get(), Join(g), "field 5 (I5): bad integer ' 3'", &b);
  EXPECT_EQ(b.rows(), 1u);
}

TEST(CriteoParser, BadHashBits) {
  for (int bits : {0, -1, 33, 64}) {
    ParseOptions o;
    o.hash_bits = bits;
    auto p = MakeParser(Format::kCriteo, o);
    EXPECT_TRUE(p.status().IsInvalidArgument()) << bits;
  }
}

}  // namespace
}  // namespace virga::formats
