// Models: the math a worker runs on a minibatch and the evaluator runs on a
// test set. Parameters live on the parameter server as a sparse table keyed
// by feature id (width() floats per key); the model only sees the rows of a
// minibatch and the weights of the keys those rows touch.
//
// A minibatch reaches a model as a SlotBatch: its rows, plus for every stored
// entry the slot of its feature in a dense list of the minibatch's distinct
// keys (built by KeyMap, src/models/key_map.h: slot 0 is the bias, features
// follow in order of first appearance), and the slot of the bias key. Weights and gradients
// are indexed by slot: weights[slot * width() + c]. This is the interface
// later models (factorization machines, matrix factorization, softmax) use
// too: one virtual call per minibatch; the loops inside are templates over
// the model's kernel (no virtual call per row or feature).
//
// Labels: a row is positive when its label > 0 (0/1 and -1/+1 data both work).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

enum class ModelKind : uint8_t { kLogisticRegression = 0, kLinearSvm = 1 };
// "lr" | "logistic" -> logistic regression; "svm" -> linear SVM. Else InvalidArgument.
Result<ModelKind> ParseModelName(std::string_view name);
const char* ModelName(ModelKind kind);  // "lr", "svm"; "unknown" outside the enum

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
  virtual uint32_t width() const = 0;  // floats per key

  // Adds the gradient of the mean loss over the batch's rows to `grads`
  // (num_slots * width, zeroed by the caller) and returns the summed loss
  // (so the mean loss is the return value / rows()). Allocates nothing.
  // Regularisation is the server optimizer's (l1/l2), not added here.
  virtual double Gradient(const SlotBatch& batch, std::span<const float> weights,
                          std::span<float> grads) const = 0;
  // Writes each row's predicted probability of the positive class to
  // `out` (rows()); for the SVM, the logistic of the margin.
  virtual void Predict(const SlotBatch& batch, std::span<const float> weights,
                       std::span<float> out) const = 0;
};

// Null only for a value outside the enum. Models are immutable: one instance
// may be shared by threads.
std::unique_ptr<Model> MakeModel(ModelKind kind);

}  // namespace virga
