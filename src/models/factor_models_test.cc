// The registry, and the models of width > 1 (matrix factorization,
// factorization machines, softmax) against central finite differences of
// their own mean loss, direct computations of their predictions, and the
// allocation-free contract.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "data/alloc_counter_test_util.h"
#include "models/key_map.h"
#include "virga/model.h"

namespace virga {
namespace {

// Rows of 1..max_len entries over `features` indices with labels from
// `label` (some rows repeat a feature).
template <typename LabelFn>
RowBlock Rows(std::mt19937& rng, size_t rows, uint32_t features, size_t max_len, bool binary,
              LabelFn label) {
  RowBlock b;
  std::uniform_int_distribution<uint32_t> idx(0, features - 1);
  std::uniform_real_distribution<float> val(-1.5f, 1.5f);
  for (size_t r = 0; r < rows; ++r) {
    const size_t len = 1 + rng() % max_len;
    for (size_t k = 0; k < len; ++k) b.AddFeature(idx(rng), binary ? 1.0f : val(rng));
    if (r % 5 == 0) b.AddFeature(b.indices()[b.offsets().back()], binary ? 1.0f : 0.5f);
    b.EndRow(label(rng));
  }
  return b;
}

std::vector<float> Normal(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> w(n);
  for (float& x : w) x = d(rng);
  return w;
}

double MeanLoss(const Model& m, const SlotBatch& b, const std::vector<float>& w) {
  std::vector<float> g(w.size(), 0.0f);
  return m.Gradient(b, w, g) / static_cast<double>(b.rows.rows());
}

template <typename LabelFn>
void CheckGradient(const Model& model, bool binary, size_t skip, LabelFn label) {
  std::mt19937 rng(17 + model.width() + binary);
  RowBlock block = Rows(rng, 20 + skip, 30, 6, binary, label);
  const RowBlockView rows = block.view().Slice(skip, block.rows());
  KeyMap keys(4);
  keys.Build(rows);
  const SlotBatch b = keys.Batch(rows);
  const uint32_t width = model.width();
  std::vector<float> w = Normal(rng, size_t{b.num_slots} * width, 0.3f);
  std::vector<float> g(w.size(), 0.0f);
  EXPECT_GT(model.Gradient(b, w, g), 0.0);
  const float h = 1e-3f;
  for (size_t i = 0; i < w.size(); ++i) {
    std::vector<float> plus = w, minus = w;
    plus[i] += h;
    minus[i] -= h;
    const double fd = (MeanLoss(model, b, plus) - MeanLoss(model, b, minus)) / (2.0 * h);
    EXPECT_NEAR(g[i], fd, 2e-3 + 1e-2 * std::fabs(fd))
        << ModelName(model.kind()) << " slot " << i / width << " column " << i % width;
  }
}

float Rating(std::mt19937& rng) { return static_cast<float>(1 + rng() % 5); }
float Binary(std::mt19937& rng) { return static_cast<float>(rng() % 2); }

TEST(ModelRegistry, EntriesAreConsistent) {
  std::set<std::string> names;
  for (size_t i = 0; i < Models().size(); ++i) {
    const ModelInfo& m = *Models()[i];
    SCOPED_TRACE(m.name);
    EXPECT_EQ(static_cast<size_t>(m.kind), i) << "registry out of enum order";
    EXPECT_TRUE(names.insert(m.name).second) << "duplicate name";
    EXPECT_EQ(*ParseModelName(m.name), m.kind);
    EXPECT_STREQ(ModelName(m.kind), m.name);
    EXPECT_EQ(&ModelInfoOf(m.kind), &m);
    ModelShape shape;
    shape.classes = 3;
    Result<uint32_t> width = m.width(shape);
    ASSERT_TRUE(width.ok()) << width.status().ToString();
    auto model = MakeModel(m.kind, *width);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ((*model)->kind(), m.kind);
    EXPECT_EQ((*model)->task(), m.task);
    EXPECT_EQ((*model)->width(), *width);
    EXPECT_EQ((*model)->outputs(), m.task == ModelTask::kMulticlass ? 3u : 1u);
    EXPECT_FALSE(MakeModel(m.kind, 0).ok());
    if (m.own_optimizer) {
      EXPECT_GT(m.optimizer.learning_rate, 0.0f);
    }
  }
  EXPECT_EQ(*ParseModelName("matrix_factorization"), ModelKind::kMatrixFactorization);
  EXPECT_STREQ(PrimaryMetric(ModelTask::kRegression), "rmse");
  EXPECT_STREQ(PrimaryMetric(ModelTask::kMulticlass), "logloss");
}

TEST(ModelRegistry, ShapesAndTheirErrors) {
  const ModelInfo& mf = ModelInfoOf(ModelKind::kMatrixFactorization);
  EXPECT_EQ(*mf.width(ModelShape{.rank = 10}), 11u);
  EXPECT_GT(*mf.width(ModelShape{}), 1u);  // a default rank
  EXPECT_FALSE(mf.width(ModelShape{.rank = 5000}).ok());
  const ModelInfo& sm = ModelInfoOf(ModelKind::kSoftmax);
  Result<uint32_t> none = sm.width(ModelShape{});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("classes"), std::string::npos);
  EXPECT_EQ(*sm.width(ModelShape{.classes = 10}), 10u);
  EXPECT_EQ(MakeModel(ModelKind::kSoftmax), nullptr);  // no default shape
  Result<std::unique_ptr<Model>> bad = MakeModel(ModelKind::kLogisticRegression, 3);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("width 3"), std::string::npos);
}

TEST(FactorizationModels, MfGradientMatchesFiniteDifferences) {
  auto mf = std::move(MakeModel(ModelKind::kMatrixFactorization, 5)).value();
  CheckGradient(*mf, /*binary=*/true, 0, Rating);
  CheckGradient(*mf, /*binary=*/false, 3, Rating);
}

TEST(FactorizationModels, FmGradientMatchesFiniteDifferences) {
  auto fm = std::move(MakeModel(ModelKind::kFactorizationMachine, 4)).value();
  CheckGradient(*fm, /*binary=*/true, 2, Binary);
  CheckGradient(*fm, /*binary=*/false, 0, Binary);
}

TEST(FactorizationModels, FfmGradientMatchesFiniteDifferences) {
  auto ffm = std::move(MakeModel(ModelKind::kFieldAwareFm, 1 + 39 * 2)).value();
  CheckGradient(*ffm, /*binary=*/true, 1, Binary);
  CheckGradient(*ffm, /*binary=*/false, 0, Binary);
}

// Two entries: the first's factors for field 1 meet the second's for field 0.
TEST(FactorizationModels, FfmPairsFieldAwareFactors) {
  RowBlock b;
  b.AddFeature(10, 1.0f);
  b.AddFeature(20, 2.0f);
  b.EndRow(1.0f);
  KeyMap keys;
  keys.Build(b.view());
  const SlotBatch batch = keys.Batch(b.view());
  const uint32_t width = 1 + 39 * 2;
  std::vector<float> w(size_t{3} * width, 0.0f);
  w[0] = 0.5f;                                               // bias
  w[1 * width] = 0.25f;                                      // w_10
  w[2 * width] = -0.5f;                                      // w_20
  w[1 * width + 1 + 1 * 2] = 1.0f, w[1 * width + 2 + 1 * 2] = 2.0f;  // v_{10, field 1}
  w[2 * width + 1 + 0 * 2] = 3.0f, w[2 * width + 2 + 0 * 2] = -1.0f;  // v_{20, field 0}
  w[1 * width + 1] = 100.0f;  // v_{10, field 0}: unused by this pair
  float p = 0;
  MakeModel(ModelKind::kFieldAwareFm, width).value()->Predict(batch, w, std::span<float>(&p, 1));
  const double m = 0.5 + 0.25 - 0.5 * 2 + (1.0 * 3 + 2.0 * -1) * 1 * 2;
  EXPECT_NEAR(p, 1 / (1 + std::exp(-m)), 1e-6);
  EXPECT_FALSE(MakeModel(ModelKind::kFieldAwareFm, 40 + 1).ok());  // not 1 + 39 k
}

TEST(Softmax, GradientMatchesFiniteDifferences) {
  auto sm = std::move(MakeModel(ModelKind::kSoftmax, 4)).value();
  auto label = [](std::mt19937& rng) { return static_cast<float>(rng() % 4); };
  CheckGradient(*sm, /*binary=*/false, 1, label);
  CheckGradient(*sm, /*binary=*/true, 0, label);
}

// A user row and an item row: mu + b_u + b_i + <p_u, q_i>, exactly.
TEST(FactorizationModels, MfPredictsBiasedDotProduct) {
  RowBlock b;
  b.AddFeature(2 * 7, 1.0f);      // user 7
  b.AddFeature(2 * 3 + 1, 1.0f);  // item 3
  b.EndRow(4.0f);
  KeyMap keys;
  keys.Build(b.view());
  const SlotBatch batch = keys.Batch(b.view());
  ASSERT_EQ(batch.num_slots, 3u);
  // Slots: bias, user, item; width 1 + rank 2.
  const std::vector<float> w = {3.5f, 9.0f, 9.0f, 0.25f, 1.0f, 2.0f, -0.5f, 0.5f, 3.0f};
  float p = 0;
  auto mf = std::move(MakeModel(ModelKind::kMatrixFactorization, 3)).value();
  mf->Predict(batch, w, std::span<float>(&p, 1));
  EXPECT_NEAR(p, 3.5 + 0.25 - 0.5 + (1.0 * 0.5 + 2.0 * 3.0), 1e-5);
  // An unknown item (zero row, as a model file gives it): mu + b_u.
  std::vector<float> unknown = w;
  std::fill(unknown.begin() + 6, unknown.end(), 0.0f);
  mf->Predict(batch, unknown, std::span<float>(&p, 1));
  EXPECT_NEAR(p, 3.5 + 0.25, 1e-6);
  std::vector<float> g(w.size(), 0.0f);
  EXPECT_NEAR(mf->Gradient(batch, unknown, g), 0.5 * (3.75 - 4.0) * (3.75 - 4.0), 1e-6);
}

TEST(Softmax, PredictsNormalisedProbabilities) {
  std::mt19937 rng(5);
  RowBlock block = Rows(rng, 40, 20, 5, false, [](std::mt19937& r) { return float(r() % 3); });
  KeyMap keys;
  keys.Build(block.view());
  const SlotBatch b = keys.Batch(block.view());
  std::vector<float> w = Normal(rng, size_t{b.num_slots} * 3, 2.0f);
  std::vector<float> p(block.rows() * 3);
  MakeModel(ModelKind::kSoftmax, 3).value()->Predict(b, w, p);
  for (size_t r = 0; r < block.rows(); ++r) {
    double z[3];
    for (int c = 0; c < 3; ++c) {
      z[c] = w[b.bias_slot * 3 + c];
      for (size_t q = block.offsets()[r]; q < block.offsets()[r + 1]; ++q)
        z[c] += w[b.slot[q] * 3 + c] * block.values()[q];
    }
    const double total = std::exp(z[0]) + std::exp(z[1]) + std::exp(z[2]);
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(p[r * 3 + c], std::exp(z[c]) / total, 1e-5);
  }
}

TEST(FactorizationModels, GradientAndPredictAllocateNothing) {
  std::mt19937 rng(23);
  std::vector<RowBlock> batches;
  for (int i = 0; i < 6; ++i)
    batches.push_back(Rows(rng, 200, 1u << 12, 39, i % 2 == 0, Binary));
  KeyMap keys;
  for (const RowBlock& b : batches) keys.Build(b.view());
  for (auto [kind, width] : {std::pair{ModelKind::kMatrixFactorization, 33u},
                             std::pair{ModelKind::kFactorizationMachine, 9u},
                             std::pair{ModelKind::kFieldAwareFm, 1 + 39 * 4u},
                             std::pair{ModelKind::kSoftmax, 10u}}) {
    auto model = std::move(MakeModel(kind, width)).value();
    std::vector<float> w((size_t{1} << 12) * width, 0.01f), g(w.size()), p(200 * 10);
    const uint64_t before = virga_test::ThreadAllocations();
    double loss = 0;
    for (const RowBlock& b : batches) {
      keys.Build(b.view());
      const SlotBatch batch = keys.Batch(b.view());
      const size_t n = size_t{batch.num_slots} * width;
      loss += model->Gradient(batch, std::span<const float>(w).first(n),
                              std::span<float>(g).first(n));
      model->Predict(batch, std::span<const float>(w).first(n), p);
    }
    EXPECT_GT(loss, 0.0);
    EXPECT_EQ(virga_test::ThreadAllocations() - before, 0u) << ModelName(kind);
  }
}

}  // namespace
}  // namespace virga
