// Linear SVM: hinge loss max(0, 1 - y m), y in {-1, +1}; its subgradient at
// the kink (y m == 1) is taken as 0.
#include "models/linear_model.h"

namespace virga {
namespace {

struct HingeLoss {
  static constexpr ModelKind kKind = ModelKind::kLinearSvm;

  static LossAndSlope Eval(float margin, float y) {
    const float z = y * margin;
    return z < 1.0f ? LossAndSlope{1.0f - z, -y} : LossAndSlope{0.0f, 0.0f};
  }
};

}  // namespace

extern const ModelInfo kLinearSvmInfo{
    .kind = ModelKind::kLinearSvm,
    .name = "svm",
    .aliases = "",
    .task = ModelTask::kBinary,
    .summary = "linear SVM, hinge loss (binary labels)",
    .width = &linear_internal::Width,
    .make = &linear_internal::Make<HingeLoss>,
    .channel_ok = true,
};

std::unique_ptr<Model> MakeLinearSvm() { return std::make_unique<LinearModel<HingeLoss>>(); }

}  // namespace virga
