// Logistic regression: loss log(1 + exp(-y m)), y in {-1, +1}.
#include "models/linear_model.h"

namespace virga {
namespace {

struct LogisticLoss {
  static constexpr ModelKind kKind = ModelKind::kLogisticRegression;

  static LossAndSlope Eval(float margin, float y) { return LogisticLossAndSlope(margin, y); }
};

}  // namespace

extern const ModelInfo kLogisticRegressionInfo{
    .kind = ModelKind::kLogisticRegression,
    .name = "lr",
    .aliases = "logistic",
    .task = ModelTask::kBinary,
    .summary = "sparse logistic regression (binary labels)",
    .width = &linear_internal::Width,
    .make = &linear_internal::Make<LogisticLoss>,
    .channel_ok = true,
};

std::unique_ptr<Model> MakeLogisticRegression() {
  return std::make_unique<LinearModel<LogisticLoss>>();
}

}  // namespace virga
