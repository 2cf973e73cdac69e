// The parts of the evaluator that need a concrete model or a dataset: kept
// apart from evaluator.cc so tests of the evaluation loop can inject a model
// without linking virga_models.
#include <limits>
#include <string>

#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/partition.h"

namespace virga {

Evaluator::Evaluator(ModelKind kind, RowBlock rows, EvaluatorOptions options)
    : Evaluator(MakeModel(kind), std::move(rows), options) {}

Result<std::unique_ptr<Evaluator>> Evaluator::Load(ObjectStore& store, std::string_view dataset,
                                                   Split which, ModelKind kind,
                                                   EvaluatorOptions options) {
  std::unique_ptr<Model> model = MakeModel(kind);
  if (!model) {
    return Status::InvalidArgument(std::string("model '") + ModelName(kind) +
                                   "' needs its shape (classes) to be evaluated");
  }
  return Load(store, dataset, which, std::move(model), options);
}

Result<std::unique_ptr<Evaluator>> Evaluator::Load(ObjectStore& store, std::string_view dataset,
                                                   Split which, std::unique_ptr<Model> model,
                                                   EvaluatorOptions options) {
  VIRGA_ASSIGN_OR_RETURN(Manifest m, ReadManifest(store, dataset));
  const bool test = which == Split::kTest;
  const std::vector<PartitionInfo>& parts = test ? m.test : m.train;
  const uint64_t rows = test ? m.test_rows : m.train_rows;
  const uint64_t nnz = test ? m.test_nnz : m.train_nnz;
  const std::string what = "dataset '" + std::string(dataset) + "' " + SplitName(which) + " split";
  if (rows == 0 || parts.empty()) return Status::InvalidArgument(what + " has no rows");
  if (nnz >= std::numeric_limits<uint32_t>::max() || rows >= std::numeric_limits<uint32_t>::max())
    return Status::ResourceExhausted(what + " is too large to evaluate in one process (" +
                                     std::to_string(rows) + " rows, " + std::to_string(nnz) +
                                     " entries; at most 2^32-1 of each)");

  RowBlock block;
  block.Reserve(rows, nnz);
  PartitionBuffer buffer;
  std::string bytes;
  uint64_t bytes_read = 0;
  for (const PartitionInfo& p : parts) {
    VIRGA_RETURN_IF_ERROR(store.Get(p.key, &bytes));
    VIRGA_RETURN_IF_ERROR(DecodePartition(bytes, p.key, &buffer));
    const RowBlockView v = buffer.view();
    if (block.nnz() + v.nnz() >= std::numeric_limits<uint32_t>::max())
      return Status::ResourceExhausted(what + " holds more than 2^32-1 entries (at " + p.key + ")");
    block.AppendRows(v);
    bytes_read += bytes.size();
    if (options.on_load) options.on_load(block.rows(), bytes_read);
  }
  return std::make_unique<Evaluator>(std::move(model), std::move(block), options);
}

}  // namespace virga
