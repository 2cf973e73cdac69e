// Biased matrix factorization (Koren, Bell, Volinsky 2009): a rating is
// predicted as mu + b_u + b_i + <p_u, q_i>, trained on squared error.
//
// Data: rows of a user feature and an item feature, as `virga ingest
// --format ratings` writes them (user u is key 2u, item i is key 2i + 1, so
// the two never share a row of parameters). The kernel is the factorization
// machine's (factorization_model.h), which for such rows is exactly the
// formula above: the bias key's column 0 is mu, a key's column 0 its bias,
// columns 1..rank its factors.
//
// Unknown users or items: a model file holds no row for them, so predict
// gives them zero bias and zero factors, and the rating falls back to the
// known side's biases. Read live from a server, an unseen key has its initial
// row instead (factors of scale init_scale, near zero).
//
// Defaults (docs/models.md, "Matrix factorization", with the grid that chose
// them on MovieLens): below.
#include "models/factorization_model.h"

namespace virga {
namespace {

struct SquaredLoss {
  static constexpr ModelKind kKind = ModelKind::kMatrixFactorization;
  static constexpr ModelTask kTask = ModelTask::kRegression;
  // loss 1/2 (m - y)^2, so the slope is the error m - y.
  static LossAndSlope Eval(float margin, float y) {
    const float err = margin - y;
    return {0.5f * err * err, err};
  }
  static float Output(float margin) { return margin; }
};

constexpr uint32_t kDefaultRank = 32;

Result<uint32_t> Width(const ModelShape& shape) {
  return FactorizationModel<SquaredLoss>::Width(shape, kDefaultRank);
}

OptimizerConfig DefaultOptimizer() {
  OptimizerConfig c;
  c.kind = OptimizerKind::kAdagrad;
  c.learning_rate = 0.15f;
  c.l2 = 0.025f;
  return c;
}

}  // namespace

extern const ModelInfo kMatrixFactorizationInfo{
    .kind = ModelKind::kMatrixFactorization,
    .name = "mf",
    .aliases = "matrix_factorization",
    .task = ModelTask::kRegression,
    .summary = "biased matrix factorization of ratings (--format ratings)",
    .width = &Width,
    .make = &FactorizationModel<SquaredLoss>::Make,
    .init = InitKind::kNormal,
    .init_scale = 0.1f,
    .optimizer = DefaultOptimizer(),
    .own_optimizer = true,
    .minibatch = 20,
    .epochs = 20,
    .channel_ok = false,
};

}  // namespace virga
