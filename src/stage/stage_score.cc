// ScoreOnFunctions (include/virga/stage.h) and its task, "score": a group of
// partitions scored with a model file; each row's predictions and label go to
// a scratch object (little-endian floats: the model's outputs() predictions,
// then the label), which the driver reads back in partition order to compute
// the metrics of the model's task over every row at once.
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
      block.AppendRows(buffer.view());
    }
    const size_t rows = block.rows();
    Result<std::unique_ptr<Model>> made = MakeModel(model.header.model, model.header.width);
    if (!made.ok()) return made.status().WithContext("model file '" + model_uri + "'");
    const uint32_t outputs = (*made)->outputs();
    std::string out;
    if (rows > 0) {
      Evaluator ev(std::move(made).value(), std::move(block));
      std::vector<float> weights(ev.keys().size() * ev.width());
      model.Gather(ev.keys(), weights);
      const std::vector<float> scores = ev.Scores(weights);
      const size_t stride = (outputs + 1) * sizeof(float);
      out.resize(rows * stride);
      for (size_t i = 0; i < rows; ++i) {
        std::memcpy(out.data() + i * stride, &scores[i * outputs], outputs * sizeof(float));
        std::memcpy(out.data() + i * stride + outputs * sizeof(float), &ev.labels()[i], sizeof(float));
      }
    }
    const std::string key = args.at("scratch").get<std::string>() +
                            fmt::format("scores-{:05}", task.at("group").get<uint64_t>());
    VIRGA_RETURN_IF_ERROR(ctx.store->Put(key, out));
    return Json{{"key", key},
                {"rows", rows},
                {"model", ModelName(model.header.model)},
                {"width", model.header.width}};
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
  std::unique_ptr<Model> model;  // of the model file, as the tasks read it
  Status status = results.status();
  if (status.ok()) {
    std::string bytes;
    for (const Json& r : *results) {
      const std::string key = r.at("key").get<std::string>();
      const uint64_t rows = r.at("rows").get<uint64_t>();
      if (model == nullptr) {
        Result<ModelKind> kind = ParseModelName(r.at("model").get<std::string>());
        if (!kind.ok()) {
          status = kind.status();
          break;
        }
        Result<std::unique_ptr<Model>> made = MakeModel(*kind, r.at("width").get<uint32_t>());
        if (!made.ok()) {
          status = made.status();
          break;
        }
        model = std::move(made).value();
      }
      const uint32_t outputs = model->outputs();
      status = store->Get(key, &bytes);
      if (!status.ok()) break;
      if (bytes.size() != rows * (outputs + 1) * 4) {
        status = Status::Corruption(fmt::format("{}: {} bytes for {} rows of {} predictions",
                                                key, bytes.size(), rows, outputs));
        break;
      }
      const size_t at = report.scores.size();
      report.scores.resize(at + rows * outputs);
      for (uint64_t i = 0; i < rows; ++i) {
        float l;
        std::memcpy(&report.scores[at + i * outputs], bytes.data() + i * (outputs + 1) * 4, outputs * 4);
        std::memcpy(&l, bytes.data() + (i * (outputs + 1) + outputs) * 4, 4);
        report.labels.push_back(l);
      }
    }
  }
  if (auto listed = store->List(scratch); listed.ok()) {
    for (const ObjectInfo& o : *listed) (void)store->Delete(o.key);
  }
  VIRGA_RETURN_IF_ERROR(status);
  if (model == nullptr) return Status::Internal("score: no task reported its model");
  report.rows = report.labels.size();
  report.model = model->kind();
  report.task = model->task();
  report.outputs = model->outputs();
  report.has_metrics = report.task != ModelTask::kBinary || m.label.kind == "binary01" ||
                       m.label.kind == "binary_pm1";
  if (report.has_metrics) report.metrics = ComputeTaskMetrics(*model, report.scores, report.labels);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  st->seconds += report.seconds;
  return report;
}

}  // namespace virga
