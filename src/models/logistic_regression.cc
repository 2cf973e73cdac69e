// Logistic regression: loss log(1 + exp(-y m)), y in {-1, +1}.
#include <algorithm>
#include <cmath>

#include "models/linear_model.h"

namespace virga {
namespace {

struct LogisticLoss {
  static constexpr ModelKind kKind = ModelKind::kLogisticRegression;

  // With z = y m and e = exp(-|z|) (never overflows):
  //   loss  = log1p(e) + max(-z, 0)
  //   slope = -y * sigmoid(-z) = -y * (z >= 0 ? e / (1 + e) : 1 / (1 + e))
  static LossAndSlope Eval(float margin, float y) {
    const float z = y * margin;
    const float e = std::exp(-std::fabs(z));
    const float loss = std::log1p(e) + std::max(-z, 0.0f);
    const float p = (z >= 0 ? e : 1.0f) / (1.0f + e);
    return {loss, -y * p};
  }
};

}  // namespace

std::unique_ptr<Model> MakeLogisticRegression() {
  return std::make_unique<LinearModel<LogisticLoss>>();
}

}  // namespace virga
