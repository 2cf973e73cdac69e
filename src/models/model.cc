#include "virga/model.h"

#include <string>

namespace virga {

// Each model's file defines its entry.
extern const ModelInfo kLogisticRegressionInfo;
extern const ModelInfo kLinearSvmInfo;
extern const ModelInfo kMatrixFactorizationInfo;
extern const ModelInfo kSoftmaxInfo;
extern const ModelInfo kFactorizationMachineInfo;
extern const ModelInfo kFieldAwareFmInfo;

namespace {

// The registry: one line per model, in enum order (checked by models_test).
const ModelInfo* const kRegistry[] = {
    &kLogisticRegressionInfo,
    &kLinearSvmInfo,
    &kMatrixFactorizationInfo,
    &kSoftmaxInfo,
    &kFactorizationMachineInfo,
    &kFieldAwareFmInfo,
};

constexpr const char* kBinaryMetrics[] = {"logloss", "auc", "accuracy"};
constexpr const char* kRegressionMetrics[] = {"rmse", "mae"};
constexpr const char* kMulticlassMetrics[] = {"logloss", "accuracy"};

bool HasAlias(const char* aliases, std::string_view name) {
  std::string_view rest = aliases;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    if (rest.substr(0, sp) == name) return true;
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return false;
}

}  // namespace

const char* TaskName(ModelTask task) {
  switch (task) {
    case ModelTask::kBinary:
      return "binary";
    case ModelTask::kRegression:
      return "regression";
    case ModelTask::kMulticlass:
      return "multiclass";
  }
  return "unknown";
}

const char* PrimaryMetric(ModelTask task) { return TaskMetrics(task)[0]; }

std::span<const char* const> TaskMetrics(ModelTask task) {
  switch (task) {
    case ModelTask::kRegression:
      return kRegressionMetrics;
    case ModelTask::kMulticlass:
      return kMulticlassMetrics;
    case ModelTask::kBinary:
      break;
  }
  return kBinaryMetrics;
}

std::span<const ModelInfo* const> Models() { return kRegistry; }

const ModelInfo& ModelInfoOf(ModelKind kind) { return *kRegistry[static_cast<size_t>(kind)]; }

Result<ModelKind> ParseModelName(std::string_view name) {
  for (const ModelInfo* m : kRegistry) {
    if (name == m->name || HasAlias(m->aliases, name)) return m->kind;
  }
  return Status::InvalidArgument("unknown model '" + std::string(name) + "' (expected " +
                                 ModelNameList() + ")");
}

const char* ModelName(ModelKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < std::size(kRegistry) ? kRegistry[i]->name : "unknown";
}

std::string ModelNameList() {
  std::string out;
  for (const ModelInfo* m : kRegistry) out += (out.empty() ? "" : ", ") + std::string(m->name);
  return out;
}

std::unique_ptr<Model> MakeModel(ModelKind kind) {
  const auto i = static_cast<size_t>(kind);
  if (i >= std::size(kRegistry)) return nullptr;
  const ModelInfo& m = *kRegistry[i];
  Result<uint32_t> width = m.width(ModelShape{});
  return width.ok() ? m.make(*width) : nullptr;
}

Result<std::unique_ptr<Model>> MakeModel(ModelKind kind, uint32_t width) {
  const auto i = static_cast<size_t>(kind);
  if (i >= std::size(kRegistry)) return Status::InvalidArgument("unknown model kind");
  std::unique_ptr<Model> model = kRegistry[i]->make(width);
  if (!model) {
    return Status::InvalidArgument("model '" + std::string(kRegistry[i]->name) +
                                   "' cannot have rows of width " + std::to_string(width));
  }
  return model;
}

}  // namespace virga
