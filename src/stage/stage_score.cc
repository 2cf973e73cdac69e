// ScoreOnFunctions (include/virga/stage.h) and its task, "score": a group of
// partitions scored with a model file; scores and labels go to a scratch
// object (little-endian float pairs), which the driver reads back in
// partition order to compute the metrics over every row at once.
#include <fmt/format.h>

#include "stage/stage_runner.h"
#include "stage/task_kinds.h"
#include "virga/evaluator.h"
#include "virga/model_file.h"
#include "virga/partition.h"

namespace virga {
namespace stage {

TaskResult RunScore(const TaskContext& ctx, const Json& args, const Json& task) {
  try {
    const std::string model_uri = args.at("model").get<std::string>();
    VIRGA_ASSIGN_OR_RETURN(ModelData model, LoadModel(model_uri));
    RowBlock block;
    PartitionBuffer buffer;
    std::string bytes;
    for (const Json& k : task.at("keys")) {
      const std::string key = k.get<std::string>();
      VIRGA_RETURN_IF_ERROR(ctx.store->Get(key, &bytes));
      VIRGA_RETURN_IF_ERROR(DecodePartition(bytes, key, &buffer));
      const RowBlockView v = buffer.view();
      for (size_t r = 0; r < v.rows(); ++r) {
        for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) block.AddFeature(v.indices[q], v.value(q));
        block.EndRow(v.labels[r]);
      }
    }
    const size_t rows = block.rows();
    std::string out;
    if (rows > 0) {
      Result<std::unique_ptr<Model>> made = MakeModel(model.header.model, model.header.width);
      if (!made.ok()) return made.status().WithContext("model file '" + model_uri + "'");
      if ((*made)->outputs() != 1) {
        return Status::InvalidArgument(fmt::format(
            "model file '{}': model {} predicts {} values per row; score it without functions",
            model_uri, ModelName(model.header.model), (*made)->outputs()));
      }
      Evaluator ev(std::move(made).value(), std::move(block));
      std::vector<float> weights(ev.keys().size() * ev.width());
      model.Gather(ev.keys(), weights);
      const std::vector<float> scores = ev.Scores(weights);
      out.resize(rows * 2 * sizeof(float));
      for (size_t i = 0; i < rows; ++i) {
        std::memcpy(out.data() + i * 8, &scores[i], 4);
        std::memcpy(out.data() + i * 8 + 4, &ev.labels()[i], 4);
      }
    }
    const std::string key = args.at("scratch").get<std::string>() +
                            fmt::format("scores-{:05}", task.at("group").get<uint64_t>());
    VIRGA_RETURN_IF_ERROR(ctx.store->Put(key, out));
    return Json{{"key", key}, {"rows", rows}};
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("score task: ") + e.what());
  }
}

}  // namespace stage

Result<ScoreReport> ScoreOnFunctions(const std::string& store_uri, const std::string& model_uri,
                                     const std::string& dataset, Split split,
                                     const StageOptions& stage, StageStats* stats) {
  using stage::Json;
  const auto start = std::chrono::steady_clock::now();
  const std::string backend = stage::BackendName(stage);
  VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, store_uri, "store '" + store_uri + "'"));
  VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, model_uri, "model file '" + model_uri + "'"));
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> store, ObjectStore::Open(store_uri));
  VIRGA_ASSIGN_OR_RETURN(Manifest m, ReadManifest(*store, dataset));
  const std::vector<PartitionInfo>& parts = split == Split::kTest ? m.test : m.train;
  if (parts.empty()) {
    return Status::InvalidArgument("dataset '" + dataset + "' " + SplitName(split) +
                                   " split has no rows");
  }
  const size_t per_task = std::max<uint32_t>(stage.partitions_per_task, 1);
  std::vector<Json> tasks;
  for (size_t i = 0; i < parts.size(); i += per_task) {
    Json keys = Json::array();
    for (size_t k = i; k < std::min(parts.size(), i + per_task); ++k) keys.push_back(parts[k].key);
    tasks.push_back({{"group", tasks.size()}, {"keys", std::move(keys)}});
  }
  // Scratch under checkpoints-like space of its own: scores of a dataset the
  // user may not own are not written into its prefix.
  const std::string scratch = "scratch/" + stage::NewStageJobId() + "/";
  StageStats local_stats;
  StageStats* st = stats != nullptr ? stats : &local_stats;
  Result<std::vector<Json>> results =
      stage::RunTasks(stage, store_uri, "score", "score", Json{{"model", model_uri}, {"scratch", scratch}},
                      tasks, st);
  ScoreReport report;
  Status status = results.status();
  if (status.ok()) {
    std::string bytes;
    for (const Json& r : *results) {
      const std::string key = r.at("key").get<std::string>();
      const uint64_t rows = r.at("rows").get<uint64_t>();
      status = store->Get(key, &bytes);
      if (!status.ok()) break;
      if (bytes.size() != rows * 8) {
        status = Status::Corruption(fmt::format("{}: {} bytes for {} rows", key, bytes.size(), rows));
        break;
      }
      for (uint64_t i = 0; i < rows; ++i) {
        float s, l;
        std::memcpy(&s, bytes.data() + i * 8, 4);
        std::memcpy(&l, bytes.data() + i * 8 + 4, 4);
        report.scores.push_back(s);
        report.labels.push_back(l);
      }
    }
  }
  if (auto listed = store->List(scratch); listed.ok()) {
    for (const ObjectInfo& o : *listed) (void)store->Delete(o.key);
  }
  VIRGA_RETURN_IF_ERROR(status);
  report.rows = report.scores.size();
  report.binary = m.label.kind == "binary01" || m.label.kind == "binary_pm1";
  if (report.binary) report.metrics = ComputeBinaryMetrics(report.scores, report.labels);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  st->seconds += report.seconds;
  return report;
}

}  // namespace virga
