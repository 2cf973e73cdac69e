// Models: the math a worker runs on a minibatch and the evaluator runs on a
// test set. Parameters live on the parameter server as a sparse table keyed
// by feature id (width() floats per key); the model only sees the rows of a
// minibatch and the weights of the keys those rows touch.
//
// A minibatch reaches a model as a SlotBatch: its rows, plus for every stored
// entry the slot of its feature in a dense list of the minibatch's distinct
// keys (built by KeyMap, src/models/key_map.h: slot 0 is the bias, features
// follow in order of first appearance), and the slot of the bias key. Weights
// and gradients are indexed by slot: weights[slot * width() + c]. One virtual
// call per minibatch; the loops inside are templates over the model's kernel
// (no virtual call per row or feature).
//
// A model owns its shape: its row width (1 for the linear models, 1 + rank
// for the factorization models, one column per class for softmax), its task
// (which fixes its labels, its prediction and its metrics) and how its table
// starts. Everything outside src/models asks the registry (ModelInfoOf) and
// the Model; nothing else knows a model by name.
//
// Adding a model: an enum value below, one file in src/models defining its
// Model and its ModelInfo, and one line in the registry (src/models/model.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "virga/optimizer.h"
#include "virga/row_block.h"
#include "virga/status.h"
#include "virga/table_config.h"

namespace virga {

// Persistent: model files and payloads name models by ModelInfo::name, but
// keep these values stable anyway.
enum class ModelKind : uint8_t {
  kLogisticRegression = 0,
  kLinearSvm = 1,
  kMatrixFactorization = 2,
  kSoftmax = 3,
  kFactorizationMachine = 4,
  kFieldAwareFm = 5,
};

// What a model predicts, hence its labels, its metrics and its primary metric
// (the one jobs minimise, searches rank by and dashboards plot).
enum class ModelTask : uint8_t {
  kBinary = 0,      // P(label > 0); logloss (primary), auc, accuracy
  kRegression = 1,  // the label itself; rmse (primary), mae
  kMulticlass = 2,  // P(class c), labels 0..classes-1; logloss (primary), accuracy
};
const char* TaskName(ModelTask task);       // "binary", "regression", "multiclass"
const char* PrimaryMetric(ModelTask task);  // "logloss" or "rmse": lower is better
// The metrics a task reports, primary first (names as in include/virga/metrics.h).
std::span<const char* const> TaskMetrics(ModelTask task);

// What sets a model's width besides the model itself: the user or the data.
struct ModelShape {
  uint32_t rank = 0;     // mf, fm: factors per key; 0 = the model's default
  uint32_t classes = 0;  // softmax: classes (labels 0..classes-1), >= 2; 0 = unknown
};

// The key of the bias (intercept) row; feature keys are the row indices (< 2^32).
inline constexpr uint64_t kBiasKey = 0xFFFF'FFFF'FFFF'FFFFull;

struct SlotBatch {
  RowBlockView rows;
  // slot[i] is the slot of the feature stored at rows.indices[rows.offsets[0] + i],
  // for i < rows.nnz().
  std::span<const uint32_t> slot;
  uint32_t bias_slot = 0;
  uint32_t num_slots = 0;  // distinct keys, including the bias
};

class Model {
 public:
  virtual ~Model() = default;
  virtual ModelKind kind() const = 0;
  virtual ModelTask task() const = 0;
  virtual uint32_t width() const = 0;  // floats per key
  // Floats Predict writes per row: 1, or the number of classes (multiclass).
  virtual uint32_t outputs() const { return 1; }

  // Adds the gradient of the mean loss over the batch's rows to `grads`
  // (num_slots * width, zeroed by the caller) and returns the summed loss
  // (so the mean loss is the return value / rows()). Allocates nothing.
  // Regularisation is the server optimizer's (l1/l2), not added here.
  virtual double Gradient(const SlotBatch& batch, std::span<const float> weights,
                          std::span<float> grads) const = 0;
  // Writes rows() * outputs() floats to `out`: binary models each row's
  // probability of the positive class (the SVM: the logistic of its margin);
  // regression models the predicted label; multiclass models each row's
  // class probabilities, out[row * outputs() + c].
  virtual void Predict(const SlotBatch& batch, std::span<const float> weights,
                       std::span<float> out) const = 0;
};

// A registry entry: everything the rest of virga knows about a model.
struct ModelInfo {
  ModelKind kind;
  const char* name;     // in --model, payloads, model files: "lr", "mf", ...
  const char* aliases;  // other accepted names, space-separated ("" if none)
  ModelTask task;
  const char* summary;  // one line, for --help and errors
  // Width of a table for `shape`; InvalidArgument naming the field (e.g. a
  // softmax without classes).
  Result<uint32_t> (*width)(const ModelShape& shape);
  // The model of a table of `width`; null when the model cannot have it.
  std::unique_ptr<Model> (*make)(uint32_t width);
  // How its table starts (the factorization models need random factors).
  InitKind init = InitKind::kZeros;
  float init_scale = 0.0f;
  // Its defaults, used for the settings a job leaves unset (docs/models.md):
  // the optimizer when the job's is TrainOptions::DefaultOptimizer(), and
  // minibatch / epochs when they are 0.
  OptimizerConfig optimizer = {};
  bool own_optimizer = false;  // false: the job's optimizer is used as is
  uint32_t minibatch = 0;      // 0: the job's default
  uint32_t epochs = 0;         // 0: the job's default
  // Storage channels (--channel store|redis) can train it.
  bool channel_ok = false;
};

// Every registered model, in enum order.
std::span<const ModelInfo* const> Models();
// The entry of `kind`; REQUIRES: a value of the enum.
const ModelInfo& ModelInfoOf(ModelKind kind);
// A name or alias -> the model; else InvalidArgument listing the names.
Result<ModelKind> ParseModelName(std::string_view name);
const char* ModelName(ModelKind kind);  // "lr", "svm", ...; "unknown" outside the enum
// "lr, svm, mf, ..." (for messages and help).
std::string ModelNameList();

// The model of `kind` with its default shape (for the width-1 linear models,
// their only one). Null for a value outside the enum or a model that has no
// default shape (softmax needs classes). Models are immutable: one instance
// may be shared by threads.
std::unique_ptr<Model> MakeModel(ModelKind kind);
// The model of `kind` reading a table of `width`: InvalidArgument naming
// both if the model cannot have that width.
Result<std::unique_ptr<Model>> MakeModel(ModelKind kind, uint32_t width);

}  // namespace virga
