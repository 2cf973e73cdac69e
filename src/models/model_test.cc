// The linear models against central finite differences of their own mean
// loss, and their predictions against a direct computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "data/alloc_counter_test_util.h"
#include "models/key_map.h"
#include "virga/model.h"

namespace virga {
namespace {

// Random rows over `features` indices, 1..max_len entries each, with some
// duplicate features within a row; all values 1 when `binary`.
RowBlock RandomRows(std::mt19937& rng, size_t rows, uint32_t features, size_t max_len,
                    bool binary) {
  RowBlock b;
  std::uniform_int_distribution<uint32_t> idx(0, features - 1);
  std::uniform_real_distribution<float> val(-2.0f, 2.0f);
  for (size_t r = 0; r < rows; ++r) {
    const size_t len = 1 + rng() % max_len;
    for (size_t k = 0; k < len; ++k) b.AddFeature(idx(rng), binary ? 1.0f : val(rng));
    if (r % 4 == 0) b.AddFeature(b.indices()[b.offsets().back()], binary ? 1.0f : 0.5f);
    b.EndRow(rng() % 2 ? 1.0f : 0.0f);
  }
  return b;
}

std::vector<float> RandomWeights(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> w(n);
  for (float& x : w) x = d(rng);
  return w;
}

double MeanLoss(const Model& model, const SlotBatch& b, const std::vector<float>& w) {
  std::vector<float> g(w.size(), 0.0f);
  return model.Gradient(b, w, g) / static_cast<double>(b.rows.rows());
}

// True if some row's y * margin is within `eps` of the hinge's kink.
bool NearKink(const SlotBatch& b, const std::vector<float>& w, float eps) {
  const RowBlockView& r = b.rows;
  for (size_t row = 0; row < r.rows(); ++row) {
    double m = w[b.bias_slot];
    for (size_t p = r.offsets[row]; p < r.offsets[row + 1]; ++p)
      m += w[b.slot[p - r.offsets[0]]] * r.value(p);
    const double z = (r.labels[row] > 0 ? 1 : -1) * m;
    if (std::fabs(1 - z) < eps) return true;
  }
  return false;
}

void CheckGradient(ModelKind kind, bool binary, size_t skip_rows) {
  std::mt19937 rng(7 + static_cast<int>(kind) * 2 + binary);
  auto model = MakeModel(kind);
  ASSERT_TRUE(model);
  RowBlock block = RandomRows(rng, 24 + skip_rows, 40, 8, binary);
  ASSERT_EQ(block.view().binary(), binary);
  // A slice whose first entry is not at position 0, as the worker sees.
  RowBlockView rows = block.view().Slice(skip_rows, block.rows());
  KeyMap keys(4);
  keys.Build(rows);
  const SlotBatch b = keys.Batch(rows);
  std::vector<float> w = RandomWeights(rng, b.num_slots, 0.4f);
  while (kind == ModelKind::kLinearSvm && NearKink(b, w, 0.05f))
    w = RandomWeights(rng, b.num_slots, 0.4f);

  std::vector<float> g(b.num_slots, 0.0f);
  const double loss = model->Gradient(b, w, g);
  EXPECT_GT(loss, 0.0);
  const float h = 1e-3f;
  for (uint32_t s = 0; s < b.num_slots; ++s) {
    std::vector<float> plus = w, minus = w;
    plus[s] += h;
    minus[s] -= h;
    const double fd = (MeanLoss(*model, b, plus) - MeanLoss(*model, b, minus)) / (2.0 * h);
    EXPECT_NEAR(g[s], fd, 2e-3 + 1e-2 * std::fabs(fd))
        << ModelName(kind) << " slot " << s << (s == b.bias_slot ? " (bias)" : "");
  }
  // The bias gets the mean slope over all rows: never zero for LR.
  if (kind == ModelKind::kLogisticRegression) {
    EXPECT_NE(g[b.bias_slot], 0.0f);
  }
}

TEST(LinearModels, LogisticGradientMatchesFiniteDifferences) {
  CheckGradient(ModelKind::kLogisticRegression, /*binary=*/false, 0);
  CheckGradient(ModelKind::kLogisticRegression, /*binary=*/false, 5);
  CheckGradient(ModelKind::kLogisticRegression, /*binary=*/true, 3);
}

TEST(LinearModels, SvmGradientMatchesFiniteDifferences) {
  CheckGradient(ModelKind::kLinearSvm, /*binary=*/false, 0);
  CheckGradient(ModelKind::kLinearSvm, /*binary=*/true, 2);
}

TEST(LinearModels, DuplicateFeaturesInARowCountTwice) {
  RowBlock b;
  b.AddFeature(3, 1.0f);
  b.AddFeature(3, 1.0f);
  b.EndRow(1.0f);
  KeyMap keys;
  keys.Build(b.view());
  ASSERT_EQ(keys.num_slots(), 2u);
  const SlotBatch batch = keys.Batch(b.view());
  std::vector<float> w = {0.25f, 0.5f}, g(2, 0.0f);  // bias, feature 3
  auto lr = MakeModel(ModelKind::kLogisticRegression);
  const double loss = lr->Gradient(batch, w, g);
  const double m = 0.25 + 2 * 0.5;
  EXPECT_NEAR(loss, std::log1p(std::exp(-m)), 1e-6);
  const double slope = -1.0 / (1.0 + std::exp(m));
  EXPECT_NEAR(g[0], slope, 1e-6);
  EXPECT_NEAR(g[1], 2 * slope, 1e-6);
}

TEST(LinearModels, LogisticLossIsStableForHugeMargins) {
  RowBlock b;
  b.AddFeature(1, 1.0f);
  b.EndRow(0.0f);  // negative row with a huge positive margin: loss ~ m
  b.AddFeature(1, 1.0f);
  b.EndRow(1.0f);  // positive: loss ~ 0
  KeyMap keys;
  keys.Build(b.view());
  std::vector<float> w = {0.0f, 1000.0f}, g(2, 0.0f);
  const double loss = MakeModel(ModelKind::kLogisticRegression)->Gradient(keys.Batch(b.view()), w, g);
  EXPECT_NEAR(loss, 1000.0, 1e-3);
  EXPECT_TRUE(std::isfinite(g[0]) && std::isfinite(g[1]));
  EXPECT_NEAR(g[1], 0.5, 1e-6);  // (1 from the negative row + 0) / 2 rows
}

TEST(LinearModels, PredictIsTheSigmoidOfTheMargin) {
  std::mt19937 rng(11);
  RowBlock block = RandomRows(rng, 30, 25, 6, /*binary=*/false);
  KeyMap keys;
  keys.Build(block.view());
  const SlotBatch b = keys.Batch(block.view());
  std::vector<float> w = RandomWeights(rng, b.num_slots, 3.0f);
  for (ModelKind kind : {ModelKind::kLogisticRegression, ModelKind::kLinearSvm}) {
    std::vector<float> p(block.rows());
    MakeModel(kind)->Predict(b, w, p);
    for (size_t r = 0; r < block.rows(); ++r) {
      double m = w[b.bias_slot];
      for (size_t q = block.offsets()[r]; q < block.offsets()[r + 1]; ++q)
        m += w[b.slot[q]] * block.values()[q];
      EXPECT_NEAR(p[r], 1.0 / (1.0 + std::exp(-m)), 1e-5) << r;
    }
  }
}

TEST(LinearModels, GradientAndPredictAllocateNothing) {
  std::mt19937 rng(13);
  std::vector<RowBlock> batches;
  for (int i = 0; i < 8; ++i) batches.push_back(RandomRows(rng, 200, 1u << 16, 39, i % 2 == 0));
  KeyMap keys;
  for (const RowBlock& b : batches) keys.Build(b.view());  // the map's warm-up
  std::vector<float> w(1 << 16, 0.01f), g(1 << 16), p(200);
  for (ModelKind kind : {ModelKind::kLogisticRegression, ModelKind::kLinearSvm}) {
    auto model = MakeModel(kind);
    const uint64_t before = virga_test::ThreadAllocations();
    double loss = 0;
    for (const RowBlock& b : batches) {
      keys.Build(b.view());
      const SlotBatch batch = keys.Batch(b.view());
      loss += model->Gradient(batch, std::span<const float>(w).first(batch.num_slots),
                              std::span<float>(g).first(batch.num_slots));
      model->Predict(batch, w, p);
    }
    EXPECT_GT(loss, 0.0);
    EXPECT_EQ(virga_test::ThreadAllocations() - before, 0u) << ModelName(kind);
  }
}

TEST(LinearModels, Names) {
  EXPECT_EQ(*ParseModelName("lr"), ModelKind::kLogisticRegression);
  EXPECT_EQ(*ParseModelName("logistic"), ModelKind::kLogisticRegression);
  EXPECT_EQ(*ParseModelName("svm"), ModelKind::kLinearSvm);
  auto bad = ParseModelName("gbdt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'gbdt'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("lr, svm, mf, softmax, fm"), std::string::npos);
  EXPECT_STREQ(ModelName(ModelKind::kLinearSvm), "svm");
  EXPECT_EQ(MakeModel(ModelKind::kLinearSvm)->kind(), ModelKind::kLinearSvm);
  EXPECT_EQ(MakeModel(ModelKind::kLogisticRegression)->width(), 1u);
}

}  // namespace
}  // namespace virga
