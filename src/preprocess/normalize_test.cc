// End-to-end tests of Normalize(): both passes, the output dataset and its
// manifest, and the refusal and failure cases.
#include "virga/normalize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "preprocess/normalize_test_util.h"

namespace virga {
namespace {

using testutil::DenseDataset;
using testutil::RawDataset;
using testutil::RefNormalize;
using testutil::SparseDataset;

constexpr double kTol = 1e-5;

class NormalizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto s = ObjectStore::Open(std::string("mem://normalize_test.") + info->name());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = *s;
  }

  // Writes `d` as in_, normalizes it into out_ and returns the report.
  NormalizeReport Run(const RawDataset& d, NormalizeMethod method) {
    EXPECT_TRUE(testutil::WriteRawDataset(*store_, in_, d).ok());
    auto r = Normalize(*store_, {in_, out_, method});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : NormalizeReport{};
  }

  // Decodes partition `key` of the output.
  PartitionBuffer Read(const std::string& key) {
    std::string bytes;
    PartitionBuffer buf;
    EXPECT_TRUE(store_->Get(key, &bytes).ok()) << key;
    Status s = DecodePartition(bytes, key, &buf);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return buf;
  }

  // Checks every output partition against `want`, entry by entry.
  void ExpectOutputEquals(const RawDataset& want) {
    for (bool test : {false, true}) {
      const auto& parts = test ? want.test : want.train;
      for (size_t i = 0; i < parts.size(); ++i) {
        const std::string key = PartitionKey(out_, test, i);
        SCOPED_TRACE(key);
        const PartitionBuffer buf = Read(key);
        const RowBlockView got = buf.view();
        ASSERT_EQ(got.rows(), parts[i].size());
        for (size_t r = 0; r < got.rows(); ++r) {
          const auto& row = parts[i][r].features;
          EXPECT_EQ(got.labels[r], parts[i][r].label);
          ASSERT_EQ(got.row_indices(r).size(), row.size());
          for (size_t k = 0; k < row.size(); ++k) {
            const size_t pos = got.offsets[r] + k;
            EXPECT_EQ(got.indices[pos], row[k].first);
            EXPECT_NEAR(got.value(pos), row[k].second, kTol)
                << "row " << r << " feature " << row[k].first;
          }
        }
      }
    }
  }

  // Values of feature `index` over every row of one output split.
  std::vector<float> Column(const RawDataset& shape, bool test, uint32_t index) {
    std::vector<float> out;
    const auto& parts = test ? shape.test : shape.train;
    for (size_t i = 0; i < parts.size(); ++i) {
      const PartitionBuffer buf = Read(PartitionKey(out_, test, i));
      const RowBlockView v = buf.view();
      for (size_t pos = v.offsets[0]; pos < v.offsets[v.rows()]; ++pos) {
        if (v.indices[pos] == index) out.push_back(v.value(pos));
      }
    }
    return out;
  }

  // Names of the datasets in store_; a test running several methods uses
  // a pair of names per method.
  void UseNames(NormalizeMethod m) {
    in_ = std::string("in-") + NormalizeMethodName(m);
    out_ = std::string("out-") + NormalizeMethodName(m);
  }

  std::shared_ptr<ObjectStore> store_;
  std::string in_ = "in";
  std::string out_ = "out";
};

TEST_F(NormalizeTest, DenseMinMaxMatchesReference) {
  const RawDataset d = DenseDataset();
  const NormalizeReport report = Run(d, NormalizeMethod::kMinMax);
  ExpectOutputEquals(RefNormalize(d, NormalizeMethod::kMinMax));
  EXPECT_EQ(report.partitions, 7u);
  EXPECT_EQ(report.rows, 35u);
  EXPECT_EQ(report.features_scaled, 4u);  // 0, 1, 2, 4; not the all-1 column 3
  // Train values span exactly [0, 1].
  for (uint32_t f : {0u, 1u}) {
    const std::vector<float> col = Column(d, false, f);
    EXPECT_NEAR(*std::min_element(col.begin(), col.end()), 0.0, kTol);
    EXPECT_NEAR(*std::max_element(col.begin(), col.end()), 1.0, kTol);
  }
}

TEST_F(NormalizeTest, DenseStandardMatchesReference) {
  const RawDataset d = DenseDataset();
  Run(d, NormalizeMethod::kStandard);
  ExpectOutputEquals(RefNormalize(d, NormalizeMethod::kStandard));
  // Train columns have mean 0 and population std 1.
  const std::vector<float> col = Column(d, false, 0);
  double sum = 0, sum_sq = 0;
  for (float v : col) sum += v;
  for (float v : col) sum_sq += (v - sum / col.size()) * (v - sum / col.size());
  EXPECT_NEAR(sum / col.size(), 0.0, kTol);
  EXPECT_NEAR(std::sqrt(sum_sq / col.size()), 1.0, kTol);
}

TEST_F(NormalizeTest, SparseMatchesReferenceForBothMethods) {
  const RawDataset d = SparseDataset();
  for (NormalizeMethod m : {NormalizeMethod::kMinMax, NormalizeMethod::kStandard}) {
    SCOPED_TRACE(NormalizeMethodName(m));
    UseNames(m);
    Run(d, m);
    ExpectOutputEquals(RefNormalize(d, m));
  }
}

TEST_F(NormalizeTest, TestSplitUsesTrainStatistics) {
  const RawDataset d = DenseDataset();
  Run(d, NormalizeMethod::kMinMax);
  // Test row 0 of each test partition has feature 0 = 1000 and row 1 -1000,
  // far outside the train range [-50, 150): they leave [0, 1].
  const std::vector<float> col = Column(d, true, 0);
  EXPECT_GT(*std::max_element(col.begin(), col.end()), 1.0f);
  EXPECT_LT(*std::min_element(col.begin(), col.end()), 0.0f);
}

TEST_F(NormalizeTest, ConstantFeatureMapsToZero) {
  for (NormalizeMethod m : {NormalizeMethod::kMinMax, NormalizeMethod::kStandard}) {
    UseNames(m);
    const RawDataset d = DenseDataset();
    Run(d, m);
    // Feature 2 is 3.5 in every train row; test rows hold 2 and 7.
    for (bool test : {false, true}) {
      for (float v : Column(d, test, 2)) {
        EXPECT_EQ(v, 0.0f);
        EXPECT_FALSE(std::signbit(v));
      }
    }
  }
}

TEST_F(NormalizeTest, BinaryFeaturesAndPartitionsUntouched) {
  const RawDataset d = SparseDataset();
  Run(d, NormalizeMethod::kStandard);
  for (uint32_t f = 100; f < 120; ++f) {
    for (float v : Column(d, false, f)) EXPECT_EQ(v, 1.0f) << f;
  }
  // Binary in train, 2.5 in one test row: left alone. 77 occurs in test only.
  const std::vector<float> f110 = Column(d, true, 110);
  EXPECT_NE(std::find(f110.begin(), f110.end(), 2.5f), f110.end());
  EXPECT_EQ(Column(d, true, 77), std::vector<float>{0.3f});
  // Binary partitions without scaled features stay binary; train/2 holds the
  // numeric feature 5 (as 1s) and now has values.
  EXPECT_TRUE(Read(PartitionKey(out_, false, 1)).view().binary());
  EXPECT_TRUE(Read(PartitionKey(out_, true, 1)).view().binary());
  EXPECT_FALSE(Read(PartitionKey(out_, false, 2)).view().binary());
}

}  // namespace
}  // namespace virga
