#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "virga/model.h"
#include "virga/train.h"

namespace virga {

namespace {

nlohmann::json OptimizerJson(const OptimizerConfig& c) {
  nlohmann::json j = {{"name", OptimizerName(c.kind)},  {"learning_rate", c.learning_rate},
                      {"l1", c.l1},                     {"l2", c.l2},
                      {"clip", c.clip},                 {"schedule", LrScheduleName(c.schedule)}};
  if (c.kind == OptimizerKind::kFtrl) j["ftrl_beta"] = c.ftrl_beta;
  return j;
}

// The metrics of the result's model's task, primary first.
std::span<const char* const> ResultMetrics(const TrainResult& r) {
  auto kind = ParseModelName(r.model);
  return TaskMetrics(kind.ok() ? ModelInfoOf(*kind).task : ModelTask::kBinary);
}

template <typename T>  // HistoryPoint or TrainResult
double MetricOf(const T& x, std::string_view name) {  // both TestMetric overloads
  if (name == "logloss") return x.test_logloss;
  if (name == "auc") return x.test_auc;
  if (name == "accuracy") return x.test_accuracy;
  if (name == "rmse") return x.test_rmse;
  if (name == "mae") return x.test_mae;
  return x.test_metric;
}

}  // namespace

double TestMetric(const HistoryPoint& point, std::string_view name) {
  return MetricOf(point, name);
}
double TestMetric(const TrainResult& result, std::string_view name) {
  return MetricOf(result, name);
}

std::string TrainResultToJson(const TrainResult& r) {
  using nlohmann::json;
  const std::span<const char* const> metrics = ResultMetrics(r);
  json history = json::array();
  for (const auto& h : r.history) {
    json point = {{"seconds", h.seconds}, {"updates", h.updates}, {"samples", h.samples}};
    for (const char* m : metrics) point[std::string("test_") + m] = TestMetric(h, m);
    history.push_back(std::move(point));
  }
  json functions = json::array();
  for (const auto& f : r.functions) {
    functions.push_back({{"id", f.id},
                         {"state", FunctionStateName(f.state)},
                         {"reason", f.reason},
                         {"wall_seconds", f.wall_seconds},
                         {"gb_seconds", f.gb_seconds},
                         {"peak_rss_bytes", f.peak_rss_bytes},
                         {"samples", f.samples}});
  }
  const IterationTimes& t = r.iteration;
  json j = {
      {"job_id", r.job_id},
      {"state", r.state},
      {"backend", r.backend},
      {"model", r.model},
      {"width", r.width},
      {"metric", r.metric},
      {"train_seconds", r.train_seconds},
      {"samples", r.samples},
      {"updates", r.updates},
      {"samples_per_second", r.samples_per_second},
      {"epochs", r.epochs},
      {"epochs_requested", r.epochs_requested},
      {"minibatch", r.minibatch},
      {"local_steps", r.local_steps},
      {"optimizer", OptimizerJson(r.optimizer)},
      {"workers_launched", r.workers_launched},
      {"workers_failed", r.workers_failed},
      {"workers_timed_out", r.workers_timed_out},
      {"workers_killed", r.workers_killed},
      {"workers_hung", r.workers_hung},
      {"server_restarts", r.server_restarts},
      {"checkpoints_written", r.checkpoints_written},
      {"checkpoints_failed", r.checkpoints_failed},
      {"checkpoint_error", r.checkpoint_error},
      {"partitions", r.partitions},
      {"items_per_epoch", r.items_per_epoch},
      {"partitions_processed_per_epoch", r.partitions_processed_per_epoch},
      {"items_processed_per_epoch", r.items_processed_per_epoch},
      {"items_reprocessed", r.items_reprocessed},
      {"duplicate_deliveries", r.duplicate_deliveries},
      {"traffic",
       {{"bytes_sent", r.bytes_sent},
        {"bytes_received", r.bytes_received},
        {"bytes_per_sample", r.samples > 0 ? static_cast<double>(r.bytes_sent + r.bytes_received) /
                                                 static_cast<double>(r.samples)
                                           : 0.0},
        {"bytes_per_iteration",
         t.iterations > 0 ? static_cast<double>(r.bytes_sent + r.bytes_received) /
                                static_cast<double>(t.iterations)
                          : 0.0}}},
      {"iteration_us",
       {{"iterations", t.iterations},
        {"p50", t.p50_us},
        {"p99", t.p99_us},
        {"data_wait", t.data_wait_us},
        {"pull", t.pull_us},
        {"compute", t.compute_us},
        {"push", t.push_us},
        {"pulls_early", r.pulls_early},
        {"pulls_with_push", r.pulls_with_push}}},
      {"model_file", r.model_file},
      {"history", std::move(history)},
      {"functions", std::move(functions)},
      {"cost_estimate",
       {{"functions_usd", r.cost_functions_usd},
        {"server_usd", r.cost_server_usd},
        {"total_usd", r.cost_total_usd},
        {"function_gb_seconds", r.function_gb_seconds},
        {"prices", "AWS Lambda $0.0000166667/GB-s + $0.20/M invocations; server m5.large $0.096/h"}}},
  };
  for (const char* m : metrics) j[std::string("test_") + m] = TestMetric(r, m);
  if (!r.model_error.empty()) j["model_error"] = r.model_error;
  return j.dump(2);
}

}  // namespace virga
