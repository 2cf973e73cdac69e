// Factorization machine (Rendle 2010), second order, for binary labels:
// P(y = 1) = sigmoid(m) with m the factorization machine's margin over the
// row's hashed features (factorization_model.h), trained on logistic loss.
// Rows of width 1 + rank: a feature's linear weight, then its factors.
#include "models/factorization_model.h"

namespace virga {
namespace {

struct FmLogisticLoss {
  static constexpr ModelKind kKind = ModelKind::kFactorizationMachine;
  static constexpr ModelTask kTask = ModelTask::kBinary;
  static LossAndSlope Eval(float margin, float label) {
    return LogisticLossAndSlope(margin, linear_internal::Label(label));
  }
  static float Output(float margin) { return StableSigmoid(margin); }
};

constexpr uint32_t kDefaultRank = 8;

Result<uint32_t> Width(const ModelShape& shape) {
  return FactorizationModel<FmLogisticLoss>::Width(shape, kDefaultRank);
}

// FTRL-Proximal as for lr: Adagrad diverged after an epoch or two on the
// synthetic click log (pairwise terms of 39 features per row), FTRL did not
// (docs/models.md, "Factorization machines").
OptimizerConfig DefaultOptimizer() {
  OptimizerConfig c;
  c.kind = OptimizerKind::kFtrl;
  c.learning_rate = 0.1f;
  return c;
}

}  // namespace

extern const ModelInfo kFactorizationMachineInfo{
    .kind = ModelKind::kFactorizationMachine,
    .name = "fm",
    .aliases = "factorization_machine",
    .task = ModelTask::kBinary,
    .summary = "second-order factorization machine (binary labels)",
    .width = &Width,
    .make = &FactorizationModel<FmLogisticLoss>::Make,
    .init = InitKind::kNormal,
    .init_scale = 0.01f,
    .optimizer = DefaultOptimizer(),
    .own_optimizer = true,
    .epochs = 3,
    .channel_ok = false,
};

}  // namespace virga
