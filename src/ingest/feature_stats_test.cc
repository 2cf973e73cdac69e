#include "ingest/feature_stats.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace virga {
namespace {

TEST(FeatureStats, MatchesDirectComputationAcrossBlocksAndRanges) {
  std::mt19937 rng(3);
  struct Ref { uint64_t n = 0; double mn = 1e300, mx = -1e300, s = 0, ss = 0; bool numeric = false; };
  std::map<uint32_t, Ref> ref;
  FeatureStatsAccumulator acc;
  const uint32_t kIndices[] = {0, 5, 17, 1000, FeatureStatsAccumulator::kDenseLimit + 3, 4000000000u};
  for (int b = 0; b < 5; ++b) {
    RowBlock block;
    for (int r = 0; r < 50; ++r) {
      for (uint32_t index : kIndices) {
        if (rng() % 3 == 0) continue;
        // index 5 and the big dense-limit one are binary; others mix in values.
        float v = (index == 5 || index == FeatureStatsAccumulator::kDenseLimit + 3)
                      ? 1.0f
                      : (rng() % 4 == 0 ? 1.0f : static_cast<float>(rng() % 1000) / 37.0f - 9.0f);
        block.AddFeature(index, v);
        Ref& x = ref[index];
        ++x.n;
        x.mn = std::min<double>(x.mn, v);
        x.mx = std::max<double>(x.mx, v);
        x.s += v;
        x.ss += double{v} * v;
        x.numeric = x.numeric || v != 1.0f;
      }
      block.EndRow(1);
    }
    acc.Add(block.view());
  }
  std::vector<FeatureStat> got = acc.NumericStats();
  size_t want = 0;
  for (auto& [index, x] : ref) want += x.numeric;
  ASSERT_EQ(got.size(), want);
  for (const FeatureStat& s : got) {
    const Ref& x = ref.at(s.index);
    EXPECT_TRUE(x.numeric) << s.index;
    EXPECT_EQ(s.count, x.n) << s.index;
    EXPECT_DOUBLE_EQ(s.min, x.mn);
    EXPECT_DOUBLE_EQ(s.max, x.mx);
    EXPECT_NEAR(s.sum, x.s, 1e-6 * (1 + std::abs(x.s)));
    EXPECT_NEAR(s.sum_sq, x.ss, 1e-6 * (1 + x.ss));
  }
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].index, got[i].index);
  EXPECT_EQ(acc.index_bound(), 4000000001ull);
}

TEST(FeatureStats, BinaryOnlyHasNoNumericFeatures) {
  RowBlock block;
  block.AddFeature(3, 1);
  block.AddFeature(9, 1);
  block.EndRow(0);
  FeatureStatsAccumulator acc;
  acc.Add(block.view());
  EXPECT_TRUE(acc.NumericStats().empty());
  EXPECT_EQ(acc.index_bound(), 10u);
}

// A binary block (values dropped) then valued entries of the same features:
// the earlier 1s count in the numeric features' statistics.
TEST(FeatureStats, OnesOfBinaryBlocksFoldIntoNumericFeatures) {
  const uint32_t big = FeatureStatsAccumulator::kDenseLimit + 5;
  FeatureStatsAccumulator acc;
  RowBlock ones;
  for (int r = 0; r < 3; ++r) {
    ones.AddFeature(3, 1);
    ones.AddFeature(big, 1);
    ones.AddFeature(8, 1);
    ones.EndRow(1);
  }
  ASSERT_TRUE(ones.view().binary());
  acc.Add(ones.view());
  RowBlock valued;
  valued.AddFeature(3, 4);
  valued.AddFeature(big, -2);
  valued.AddFeature(8, 1);
  valued.EndRow(0);
  acc.Add(valued.view());
  std::vector<FeatureStat> got = acc.NumericStats();
  ASSERT_EQ(got.size(), 2u);  // feature 8 only ever had 1s
  EXPECT_EQ(got[0].index, 3u);
  EXPECT_EQ(got[1].index, big);
  for (const FeatureStat& s : got) EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(got[0].min, 1);
  EXPECT_EQ(got[0].max, 4);
  EXPECT_EQ(got[0].sum, 7);
  EXPECT_EQ(got[0].sum_sq, 19);
  EXPECT_EQ(got[1].min, -2);
  EXPECT_EQ(got[1].max, 1);
  EXPECT_EQ(got[1].sum, 1);
  EXPECT_EQ(got[1].sum_sq, 7);

  acc.Release();
  EXPECT_TRUE(acc.NumericStats().empty());
  EXPECT_EQ(acc.index_bound(), uint64_t{big} + 1);
}

}  // namespace
}  // namespace virga
