// Evaluator: scores a fixed set of rows (a dataset's test split) with a
// model's weights and reports the metrics of the model's task (Metrics,
// include/virga/metrics.h). Built once; evaluated many
// times while training runs:
//
//   auto ev = Evaluator::Load(*store, "criteo", Split::kTest, ModelKind::kLogisticRegression);
//   std::vector<float> w((*ev)->keys().size() * (*ev)->width());
//   client->Pull(table, (*ev)->keys(), w);      // every second or so
//   Metrics m = (*ev)->Evaluate(w);
//
// The evaluator owns its rows and, computed once at construction, the sorted
// distinct keys they touch (feature indices as uint64, then kBiasKey, which
// sorts last) and the slot of every stored entry in that key list. So an
// evaluation is the model's Predict over precomputed SlotBatches plus the
// metrics: nothing is looked up, and nothing is allocated after construction.
//
// Memory: about 12 bytes per stored entry (index, slot, value; 8 when every
// value is 1) and 28 per row (label, offset, score, metrics scratch; a
// multiclass model keeps 4 bytes per class per row of scores), plus 8 bytes
// per distinct key.
//
// Thread safety: const methods may be called from several threads; Evaluate
// and Scores share scratch buffers under a mutex, so concurrent calls run one
// after another.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "virga/metrics.h"
#include "virga/model.h"
#include "virga/object_store.h"
#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

// Which split of a dataset to load. There is no silent fallback: a caller
// that wants "test, else train" checks Manifest::test_rows and says so.
enum class Split : uint8_t { kTest = 0, kTrain = 1 };
const char* SplitName(Split split);  // "test", "train"
// "test" | "train"; else InvalidArgument.
Result<Split> ParseSplitName(std::string_view name);

struct EvaluatorOptions {
  // Rows per Predict call. Bounds nothing in memory (scores are written in
  // place); a few thousand keeps a chunk's rows and slots in cache.
  size_t chunk_rows = 4096;
  // Optional: called by Load after each partition read, with the rows and
  // encoded bytes read so far (progress of a long load, e.g. virga predict).
  std::function<void(uint64_t rows, uint64_t bytes)> on_load;
};

// The metrics of `model`'s task over its predictions `scores` (rows x
// model.outputs(), as Model::Predict writes them) of rows labelled `labels`:
// what Evaluator::Evaluate computes, for predictions made elsewhere (by
// functions, from a model file). REQUIRES: scores.size() == labels.size() *
// model.outputs(); otherwise the metrics of 0 rows (all NaN).
Metrics ComputeTaskMetrics(const Model& model, std::span<const float> scores,
                           std::span<const float> labels);

class Evaluator {
 public:
  // Loads every row of split `which` of `dataset` from `store`.
  // NotFound if the dataset is absent; InvalidArgument if that split has no
  // rows; Corruption naming the partition key if one fails to decode;
  // ResourceExhausted if the split holds 2^32 or more entries.
  static Result<std::unique_ptr<Evaluator>> Load(ObjectStore& store, std::string_view dataset,
                                                 Split which, ModelKind kind,
                                                 EvaluatorOptions options = {});
  // The same with a given model (one of a shape MakeModel(kind) lacks:
  // a rank, a number of classes). REQUIRES: model.
  static Result<std::unique_ptr<Evaluator>> Load(ObjectStore& store, std::string_view dataset,
                                                 Split which, std::unique_ptr<Model> model,
                                                 EvaluatorOptions options = {});

  // Evaluates `rows` (moved in) with MakeModel(kind). REQUIRES: the model
  // has a default shape (not softmax).
  Evaluator(ModelKind kind, RowBlock rows, EvaluatorOptions options = {});
  // The same with a given model (tests inject their own). REQUIRES: model.
  Evaluator(std::unique_ptr<Model> model, RowBlock rows, EvaluatorOptions options = {});
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // Sorted, distinct; the last one is kBiasKey. Valid for the evaluator's life.
  std::span<const uint64_t> keys() const { return keys_; }
  uint32_t width() const { return width_; }  // floats per key (the model's)
  size_t rows() const { return labels_.size(); }
  size_t nnz() const { return indices_.size(); }
  std::span<const float> labels() const { return labels_; }
  const Model& model() const { return *model_; }

  // Metrics of the model's task (model().task()) with `weights`, where
  // weights[i * width() + c] belongs to keys()[i]. Allocates nothing.
  // REQUIRES: weights.size() == keys().size() * width(); otherwise returns
  // metrics over 0 rows (all NaN) and asserts in debug builds.
  Metrics Evaluate(std::span<const float> weights) const;

  // The model's predictions (Model::Predict): rows() * model().outputs()
  // floats, in row order. Same REQUIRES; a wrong size gives an empty vector.
  std::vector<float> Scores(std::span<const float> weights) const;

 private:
  void BuildSlots();
  // Predicts every row into `out` (rows() * outputs floats). False on a size mismatch.
  bool PredictAll(std::span<const float> weights, std::span<float> out) const;

  std::unique_ptr<Model> model_;
  uint32_t width_ = 1;
  EvaluatorOptions options_;
  // The rows, CSR from offset 0; values_ empty when every value is 1.
  std::vector<float> labels_;
  std::vector<uint32_t> offsets_;
  std::vector<uint32_t> indices_;
  std::vector<float> values_;
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> slots_;  // slots_[i]: the slot of indices_[i] in keys_

  mutable std::mutex mu_;
  mutable std::vector<float> scores_;           // GUARDED_BY(mu_); rows * outputs
  mutable BinaryMetricsAccumulator metrics_;    // GUARDED_BY(mu_)
};

}  // namespace virga
