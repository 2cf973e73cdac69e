// Evaluator::Load over a dataset written to a mem:// store, scored with the
// real logistic regression (virga_models).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/partition.h"

namespace virga {
namespace {

class EvaluatorLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ObjectStore::Open(
        "mem://eval-load-" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(s.ok());
    store_ = *s;
  }

  // Writes `parts` as the train split (test split empty unless `test`).
  void WriteDataset(const std::string& name, const std::vector<RowBlock>& parts,
                    const RowBlock* test = nullptr) {
    Manifest m;
    m.name = name;
    m.format = "libsvm";
    m.codec = "lz4";
    m.num_features = 100;
    auto put = [&](const RowBlock& b, bool is_test, uint64_t i) {
      std::string bytes;
      ASSERT_TRUE(EncodePartition(b.view(), {}, &bytes).ok());
      PartitionInfo p{PartitionKey(name, is_test, i), b.rows(), b.nnz(), bytes.size()};
      ASSERT_TRUE(store_->Put(p.key, bytes).ok());
      (is_test ? m.test : m.train).push_back(p);
      (is_test ? m.test_rows : m.train_rows) += b.rows();
      (is_test ? m.test_nnz : m.train_nnz) += b.nnz();
    };
    for (size_t i = 0; i < parts.size(); ++i) put(parts[i], false, i);
    if (test) put(*test, true, 0);
    m.label.count = m.train_rows + m.test_rows;
    ASSERT_TRUE(WriteManifest(*store_, m).ok());
  }

  std::shared_ptr<ObjectStore> store_;
};

RowBlock Rows(size_t n, bool binary, uint32_t seed) {
  std::mt19937 rng(seed);
  RowBlock b;
  for (size_t r = 0; r < n; ++r) {
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
      b.AddFeature(rng() % 100, binary ? 1.0f : 0.5f + static_cast<float>(rng() % 4));
    b.EndRow(rng() % 2 ? 1.0f : -1.0f);
  }
  return b;
}

TEST_F(EvaluatorLoadTest, LoadsEveryPartitionMixedBinaryAndValued) {
  std::vector<RowBlock> parts = {Rows(50, true, 1), Rows(70, false, 2), Rows(30, true, 3)};
  WriteDataset("mix", parts);
  auto ev = Evaluator::Load(*store_, "mix", Split::kTrain, ModelKind::kLogisticRegression);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  ASSERT_EQ((*ev)->rows(), 150u);
  EXPECT_EQ((*ev)->width(), 1u);

  // Reference: every row's logistic of (sum w[index] * value + w[bias]),
  // with w[key] = key / 100 - 0.5 and the bias 0.25.
  auto w_of = [](uint64_t k) { return k == kBiasKey ? 0.25f : static_cast<float>(k) / 100 - 0.5f; };
  std::vector<float> w;
  for (uint64_t k : (*ev)->keys()) w.push_back(w_of(k));
  const std::vector<float> scores = (*ev)->Scores(w);
  size_t row = 0;
  for (const RowBlock& p : parts) {
    const RowBlockView v = p.view();
    for (size_t r = 0; r < v.rows(); ++r, ++row) {
      double m = w_of(kBiasKey);
      for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) m += w_of(v.indices[q]) * v.value(q);
      EXPECT_NEAR(scores[row], 1 / (1 + std::exp(-m)), 1e-5) << row;
      EXPECT_EQ((*ev)->labels()[row], v.labels[r]);
    }
  }
  const Metrics m = (*ev)->Evaluate(w);
  EXPECT_EQ(m.rows, 150u);
  EXPECT_FALSE(std::isnan(m.auc));
}

TEST_F(EvaluatorLoadTest, SplitsAndErrors) {
  RowBlock test = Rows(20, true, 9);
  WriteDataset("both", {Rows(40, true, 8)}, &test);
  auto t = Evaluator::Load(*store_, "both", Split::kTest, ModelKind::kLinearSvm);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->rows(), 20u);
  EXPECT_EQ((*t)->model().kind(), ModelKind::kLinearSvm);

  WriteDataset("trainonly", {Rows(40, true, 8)});
  auto none = Evaluator::Load(*store_, "trainonly", Split::kTest, ModelKind::kLogisticRegression);
  EXPECT_TRUE(none.status().IsInvalidArgument());
  EXPECT_NE(none.status().message().find("'trainonly' test split has no rows"), std::string::npos)
      << none.status().ToString();

  auto absent = Evaluator::Load(*store_, "absent", Split::kTest, ModelKind::kLogisticRegression);
  EXPECT_TRUE(absent.status().IsNotFound());

  // A corrupted partition: Corruption naming its key.
  const std::string key = PartitionKey("both", true, 0);
  std::string bytes;
  ASSERT_TRUE(store_->Get(key, &bytes).ok());
  bytes[bytes.size() / 2] ^= 1;
  ASSERT_TRUE(store_->Put(key, bytes).ok());
  auto bad = Evaluator::Load(*store_, "both", Split::kTest, ModelKind::kLogisticRegression);
  EXPECT_TRUE(bad.status().IsCorruption());
  EXPECT_NE(bad.status().message().find(key), std::string::npos) << bad.status().ToString();
  // A missing one: NotFound naming it.
  ASSERT_TRUE(store_->Delete(key).ok());
  auto gone = Evaluator::Load(*store_, "both", Split::kTest, ModelKind::kLogisticRegression);
  EXPECT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find(key), std::string::npos) << gone.status().ToString();
}

}  // namespace
}  // namespace virga
