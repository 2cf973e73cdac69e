// Tests of the statistics pass: per-partition stats, their reduction, Fit.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "preprocess/normalize_test_util.h"
#include "virga/normalize.h"

namespace virga {
namespace {

using testutil::DenseDataset;
using testutil::RawDataset;
using testutil::RawPartition;
using testutil::RefStats;
using testutil::SparseDataset;
using testutil::ToBlock;

std::shared_ptr<ObjectStore> TestStore() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  auto store =
      ObjectStore::Open(std::string("mem://") + info->test_suite_name() + "." + info->name());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return *store;
}

// Checks `got` against statistics computed by plain loops over `parts`.
void ExpectStatsMatch(const std::vector<FeatureStat>& got, const std::vector<RawPartition>& parts) {
  const auto ref = RefStats(parts);
  ASSERT_EQ(got.size(), ref.size());
  size_t k = 0;
  for (const auto& [index, r] : ref) {
    const FeatureStat& s = got[k++];
    SCOPED_TRACE("feature " + std::to_string(index));
    EXPECT_EQ(s.index, index);
    EXPECT_EQ(s.count, r.values.size());
    EXPECT_EQ(s.min, r.min());
    EXPECT_EQ(s.max, r.max());
    EXPECT_NEAR(s.mean(), r.mean(), 1e-9 * (1 + std::abs(r.mean())));
    EXPECT_NEAR(std::sqrt(s.variance()), r.stddev(), 1e-6 * (1 + r.stddev()));
  }
}

std::vector<FeatureStat> MergedTrainStats(ObjectStore& store, const Manifest& m) {
  std::vector<FeatureStat> total;
  for (const PartitionInfo& p : m.train) {
    auto stats = ComputePartitionStats(store, p.key);
    EXPECT_TRUE(stats.ok()) << stats.status().ToString();
    if (stats.ok()) MergeStats(&total, *stats);
  }
  return total;
}

TEST(NormalizeMethod, ParsesAndNames) {
  for (NormalizeMethod m : {NormalizeMethod::kMinMax, NormalizeMethod::kStandard}) {
    auto parsed = ParseNormalizeMethod(NormalizeMethodName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  auto bad = ParseNormalizeMethod("zscore");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("zscore"), std::string::npos);
}

TEST(PartitionStats, DensePartitionsMatchRawRows) {
  auto store = TestStore();
  const RawDataset d = DenseDataset();
  ASSERT_TRUE(testutil::WriteRawDataset(*store, "dense", d).ok());
  for (size_t i = 0; i < d.train.size(); ++i) {
    auto stats = ComputePartitionStats(*store, PartitionKey("dense", false, i));
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    ExpectStatsMatch(*stats, {d.train[i]});
  }
}

TEST(PartitionStats, SparsePartitionsMatchRawRows) {
  auto store = TestStore();
  const RawDataset d = SparseDataset();
  ASSERT_TRUE(testutil::WriteRawDataset(*store, "sparse", d).ok());
  for (bool test : {false, true}) {
    const auto& parts = test ? d.test : d.train;
    for (size_t i = 0; i < parts.size(); ++i) {
      auto stats = ComputePartitionStats(*store, PartitionKey("sparse", test, i));
      ASSERT_TRUE(stats.ok()) << stats.status().ToString();
      ExpectStatsMatch(*stats, {parts[i]});
    }
  }
}

TEST(PartitionStats, SliceWithNonZeroFirstOffset) {
  const RawPartition rows = DenseDataset().train[0];
  RowBlock block = ToBlock(rows);
  const RowBlockView tail = block.view().Slice(2, rows.size());
  ExpectStatsMatch(ComputeRowStats(tail), {RawPartition(rows.begin() + 2, rows.end())});
  EXPECT_TRUE(ComputeRowStats(block.view().Slice(1, 1)).empty());
}

TEST(PartitionStats, ErrorsNameTheKey) {
  auto store = TestStore();
  ASSERT_TRUE(testutil::WriteRawDataset(*store, "dense", DenseDataset()).ok());
  const std::string missing = PartitionKey("dense", false, 99);
  auto r = ComputePartitionStats(*store, missing);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().message().find(missing), std::string::npos);

  const std::string key = PartitionKey("dense", false, 1);
  std::string bytes;
  ASSERT_TRUE(store->Get(key, &bytes).ok());
  bytes[bytes.size() / 2] ^= 0x5a;
  ASSERT_TRUE(store->Put(key, bytes).ok());
  r = ComputePartitionStats(*store, key);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(key), std::string::npos);
}

TEST(MergeStats, ReductionEqualsStatsOverAllRows) {
  for (const RawDataset& d : {DenseDataset(), SparseDataset()}) {
    SCOPED_TRACE(d.format);
    auto store = TestStore();
    const std::string name = "in-" + d.format;
    ASSERT_TRUE(testutil::WriteRawDataset(*store, name, d).ok());
    auto m = ReadManifest(*store, name);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const std::vector<FeatureStat> merged = MergedTrainStats(*store, *m);
    ExpectStatsMatch(merged, d.train);
    // Also equal to one pass over all train rows concatenated.
    RawPartition all;
    for (const RawPartition& p : d.train) all.insert(all.end(), p.begin(), p.end());
    RowBlock block = ToBlock(all);
    const std::vector<FeatureStat> direct = ComputeRowStats(block.view());
    ASSERT_EQ(merged.size(), direct.size());
    for (size_t k = 0; k < merged.size(); ++k) {
      EXPECT_EQ(merged[k].index, direct[k].index);
      EXPECT_EQ(merged[k].count, direct[k].count);
      EXPECT_EQ(merged[k].min, direct[k].min);
      EXPECT_EQ(merged[k].max, direct[k].max);
      EXPECT_NEAR(merged[k].sum, direct[k].sum, 1e-9 * (1 + std::abs(direct[k].sum)));
    }
  }
}

TEST(MergeStats, DisjointOverlappingAndEmpty) {
  auto stat = [](uint32_t i, double v) { return FeatureStat{i, 1, v, v, v, v * v}; };
  std::vector<FeatureStat> a = {stat(1, 2), stat(5, 3)};
  MergeStats(&a, {});
  EXPECT_EQ(a.size(), 2u);
  MergeStats(&a, {stat(0, 7), stat(5, -1), stat(9, 4)});
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].index, 0u);
  EXPECT_EQ(a[1].index, 1u);
  EXPECT_EQ(a[2].index, 5u);
  EXPECT_EQ(a[2].count, 2u);
  EXPECT_EQ(a[2].min, -1);
  EXPECT_EQ(a[2].max, 3);
  EXPECT_EQ(a[2].sum, 2);
  EXPECT_EQ(a[3].index, 9u);
  std::vector<FeatureStat> empty;
  MergeStats(&empty, a);
  EXPECT_EQ(empty.size(), 4u);
}

TEST(ScalerFit, MethodsConstantAndBinaryFeatures) {
  const std::vector<FeatureStat> stats = {
      {0, 4, 2, 10, 20, 136},     // values 2, 4, 4, 10: mean 5, variance 9
      {1, 3, 1, 1, 3, 3},         // binary: all 1, skipped
      {2, 2, 3.5, 3.5, 7, 24.5},  // constant
      {3, 2, 1, 2, 3, 5},         // values 1, 2: numeric although min is 1
  };
  const Scaler mm = Scaler::Fit(NormalizeMethod::kMinMax, stats);
  ASSERT_EQ(mm.size(), 3u);
  EXPECT_EQ(mm.index, (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_DOUBLE_EQ(mm.shift[0], 2);
  EXPECT_DOUBLE_EQ(mm.scale[0], 1.0 / 8);
  EXPECT_EQ(mm.scale[1], 0);
  EXPECT_DOUBLE_EQ(mm.shift[2], 1);
  EXPECT_DOUBLE_EQ(mm.scale[2], 1);
  const Scaler st = Scaler::Fit(NormalizeMethod::kStandard, stats);
  ASSERT_EQ(st.size(), 3u);
  EXPECT_DOUBLE_EQ(st.shift[0], 5);
  EXPECT_DOUBLE_EQ(st.scale[0], 1.0 / 3);
  EXPECT_EQ(st.scale[1], 0);
  EXPECT_DOUBLE_EQ(st.shift[2], 1.5);
  EXPECT_DOUBLE_EQ(st.scale[2], 2);
}

}  // namespace
}  // namespace virga
