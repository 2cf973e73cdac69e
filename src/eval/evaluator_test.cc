#include "virga/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "data/alloc_counter_test_util.h"

namespace virga {
namespace {

// A width-2 model: margin = sum (w0 + 0.5 w1) * x + w0(bias); p = sigmoid.
// Checks the SlotBatch it gets against its contract.
class FakeModel final : public Model {
 public:
  ModelKind kind() const override { return ModelKind::kLogisticRegression; }
  ModelTask task() const override { return ModelTask::kBinary; }
  uint32_t width() const override { return 2; }
  double Gradient(const SlotBatch&, std::span<const float>, std::span<float>) const override {
    return 0;
  }
  void Predict(const SlotBatch& b, std::span<const float> w,
               std::span<float> out) const override {
    EXPECT_EQ(b.slot.size(), b.rows.nnz());
    EXPECT_EQ(w.size(), size_t{b.num_slots} * 2);
    EXPECT_EQ(out.size(), b.rows.rows());
    const uint32_t base = b.rows.rows() ? b.rows.offsets[0] : 0;
    for (size_t r = 0; r < b.rows.rows(); ++r) {
      double m = w[b.bias_slot * 2];
      for (uint32_t q = b.rows.offsets[r]; q < b.rows.offsets[r + 1]; ++q) {
        const uint32_t s = b.slot[q - base];
        m += (w[s * 2] + 0.5 * w[s * 2 + 1]) * b.rows.value(q);
      }
      out[r] = static_cast<float>(1 / (1 + std::exp(-m)));
    }
  }
};

// Random rows; `spread` bounds the feature indices.
RowBlock RandomRows(size_t rows, uint32_t spread, bool binary, uint32_t seed) {
  std::mt19937 rng(seed);
  RowBlock block;
  for (size_t r = 0; r < rows; ++r) {
    const int k = rng() % 8;
    for (int j = 0; j < k; ++j)
      block.AddFeature(rng() % spread, binary ? 1.0f : static_cast<float>(rng() % 7) / 3);
    block.EndRow(rng() % 3 == 0 ? 1.0f : 0.0f);
  }
  return block;
}

// A weight pair per key, a function of the key only.
std::pair<float, float> KeyWeights(uint64_t key) {
  return {static_cast<float>(key % 13) / 13 - 0.4f, static_cast<float>(key % 5) / 10};
}

void CheckAgainstIndependent(const RowBlock& copy, const Evaluator& ev) {
  // Keys: sorted, distinct, exactly the indices plus the bias key, bias last.
  std::set<uint64_t> want(copy.indices().begin(), copy.indices().end());
  want.insert(kBiasKey);
  std::vector<uint64_t> keys(ev.keys().begin(), ev.keys().end());
  EXPECT_EQ(keys, std::vector<uint64_t>(want.begin(), want.end()));
  ASSERT_EQ(ev.keys().back(), kBiasKey);

  std::vector<float> w;
  for (uint64_t k : ev.keys()) {
    w.push_back(KeyWeights(k).first);
    w.push_back(KeyWeights(k).second);
  }
  const std::vector<float> scores = ev.Scores(w);
  ASSERT_EQ(scores.size(), copy.rows());
  const RowBlockView v = copy.view();
  for (size_t r = 0; r < v.rows(); ++r) {
    double m = KeyWeights(kBiasKey).first;
    for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) {
      auto [a, b] = KeyWeights(v.indices[q]);
      m += (a + 0.5 * b) * v.value(q);
    }
    EXPECT_NEAR(scores[r], 1 / (1 + std::exp(-m)), 1e-6) << r;
  }
  const Metrics got = ev.Evaluate(w);
  const BinaryMetrics want_m = ComputeBinaryMetrics(scores, copy.labels());
  EXPECT_EQ(got.rows, copy.rows());
  EXPECT_DOUBLE_EQ(got.logloss, want_m.logloss);
  EXPECT_DOUBLE_EQ(got.auc, want_m.auc);
  EXPECT_DOUBLE_EQ(got.accuracy, want_m.accuracy);
}

TEST(Evaluator, DenseKeySpaceMatchesIndependentScores) {
  RowBlock rows = RandomRows(5000, 300, /*binary=*/false, 1);
  RowBlock copy = rows;
  Evaluator ev(std::make_unique<FakeModel>(), std::move(rows), {.chunk_rows = 333, .on_load = {}});
  EXPECT_EQ(ev.width(), 2u);
  EXPECT_EQ(ev.rows(), 5000u);
  CheckAgainstIndependent(copy, ev);
}

TEST(Evaluator, DenseKeySpaceOfManyWordsMatchesIndependentScores) {
  // A 2^20 feature space (a hashed data set's): the presence bitmap spans
  // 16,384 words, most of them empty, and ranks cross every word boundary.
  RowBlock rows = RandomRows(4000, 1u << 20, /*binary=*/true, 3);
  for (uint32_t i : {0u, 63u, 64u, 127u, 128u, (1u << 20) - 1}) rows.AddFeature(i, 1.0f);
  rows.EndRow(1.0f);
  RowBlock copy = rows;
  Evaluator ev(std::make_unique<FakeModel>(), std::move(rows));
  CheckAgainstIndependent(copy, ev);
}

TEST(Evaluator, SparseKeySpaceMatchesIndependentScores) {
  // Indices up to ~4e9 with few entries: the sorted (not direct-indexed) path.
  RowBlock rows = RandomRows(2000, 4'000'000'000u, /*binary=*/true, 2);
  RowBlock copy = rows;
  Evaluator ev(std::make_unique<FakeModel>(), std::move(rows));
  CheckAgainstIndependent(copy, ev);
}

TEST(Evaluator, EmptyRowsAndUnfinishedRow) {
  RowBlock rows;
  rows.AddFeature(3, 1.0f);  // never ended: not a row
  Evaluator ev(std::make_unique<FakeModel>(), std::move(rows));
  EXPECT_EQ(ev.rows(), 0u);
  EXPECT_EQ(ev.nnz(), 0u);
  ASSERT_EQ(ev.keys().size(), 1u);
  EXPECT_EQ(ev.keys()[0], kBiasKey);
  Metrics m = ev.Evaluate(std::vector<float>(2, 0.0f));
  EXPECT_EQ(m.rows, 0u);
  EXPECT_TRUE(std::isnan(m.logloss));
}

TEST(Evaluator, EvaluateAllocatesNothing) {
  Evaluator ev(std::make_unique<FakeModel>(), RandomRows(3000, 1000, false, 3));
  std::vector<float> w(ev.keys().size() * ev.width(), 0.1f);
  ev.Evaluate(w);
  const uint64_t before = virga_test::ThreadAllocations();
  for (int i = 0; i < 5; ++i) ev.Evaluate(w);
  EXPECT_EQ(virga_test::ThreadAllocations(), before);
}

TEST(Evaluator, SplitNames) {
  EXPECT_EQ(*ParseSplitName("test"), Split::kTest);
  EXPECT_EQ(*ParseSplitName("train"), Split::kTrain);
  EXPECT_TRUE(ParseSplitName("validation").status().IsInvalidArgument());
  EXPECT_STREQ(SplitName(Split::kTrain), "train");
}

}  // namespace
}  // namespace virga
