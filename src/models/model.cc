#include "virga/model.h"

#include <string>

#include "models/linear_model.h"

namespace virga {

Result<ModelKind> ParseModelName(std::string_view name) {
  if (name == "lr" || name == "logistic") return ModelKind::kLogisticRegression;
  if (name == "svm") return ModelKind::kLinearSvm;
  return Status::InvalidArgument("unknown model '" + std::string(name) + "' (expected lr or svm)");
}

const char* ModelName(ModelKind kind) {
  switch (kind) {
    case ModelKind::kLogisticRegression:
      return "lr";
    case ModelKind::kLinearSvm:
      return "svm";
  }
  return "unknown";
}

std::unique_ptr<Model> MakeModel(ModelKind kind) {
  switch (kind) {
    case ModelKind::kLogisticRegression:
      return MakeLogisticRegression();
    case ModelKind::kLinearSvm:
      return MakeLinearSvm();
  }
  return nullptr;
}

}  // namespace virga
