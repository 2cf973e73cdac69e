// The job registry: <dir>/<job>/status.json (written atomically by the job at
// every evaluation) and <dir>/<job>/kill (created by RequestKill).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "scheduler/job_internal.h"
#include "virga/worker.h"

namespace virga {

namespace fs = std::filesystem;

std::string DefaultRegistryDir() {
  if (const char* home = std::getenv("VIRGA_HOME"); home && *home) return std::string(home) + "/jobs";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.virga/jobs";
}

namespace sched {

namespace {

// Fields 3 (state) and 22 (starttime) of /proc/<pid>/stat; false if unreadable.
bool ReadProcStat(int pid, char* state, uint64_t* start_ticks) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return false;
  // Field 2 (the command) is in parentheses and may hold spaces: count from
  // the last ')'.
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream rest(line.substr(paren + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3) *state = field.empty() ? '?' : field[0];
  }
  *start_ticks = std::strtoull(field.c_str(), nullptr, 10);
  return true;
}

}  // namespace

uint64_t ProcessStartTicks(int pid) {
  char state = '?';
  uint64_t ticks = 0;
  return ReadProcStat(pid, &state, &ticks) ? ticks : 0;
}

bool ProcessAlive(int pid, uint64_t start_ticks) {
  if (pid <= 0) return false;
  char state = '?';
  uint64_t ticks = 0;
  if (!ReadProcStat(pid, &state, &ticks)) return ::kill(pid, 0) == 0;  // no /proc: best effort
  // A zombie has ended (nobody reaped it yet); another start time is another
  // process that got the pid.
  return state != 'Z' && state != 'X' && (start_ticks == 0 || ticks == start_ticks);
}

LiveDetail CollectLiveDetail(ComputeBackend& backend, PsClient& client, const std::string& job,
                             std::span<const uint64_t> active) {
  LiveDetail d;
  std::vector<std::string> keys;
  for (uint64_t id : active) {
    auto info = backend.Query(id);
    if (!info.ok()) continue;
    info->output.clear();
    d.workers.push_back({std::move(*info), {}});
    keys.push_back(FunctionStatsKey(job, id));
  }
  if (!keys.empty()) {
    if (auto got = client.MultiGet(keys); got.ok() && got->size() == d.workers.size()) {
      for (size_t i = 0; i < d.workers.size(); ++i) {
        if ((*got)[i]) d.workers[i].stats_json = std::move(*(*got)[i]);
      }
    }
  }
  for (size_t i = 0; i < client.num_servers(); ++i) {
    auto stats = client.ServerStats(i);
    d.server_stats.push_back(stats.ok() ? std::move(*stats) : std::string());
  }
  return d;
}

namespace {

nlohmann::json TimesJson(const IterationTimes& t) {
  return {{"iterations", t.iterations}, {"data_wait_us", t.data_wait_us},
          {"pull_us", t.pull_us},       {"compute_us", t.compute_us},
          {"push_us", t.push_us},       {"p50_us", t.p50_us},
          {"p99_us", t.p99_us}};
}

// The dashboard's additions: experiment parameters, live and recent workers,
// the servers' stats and a cost estimate that counts the running functions.
void AddDetail(const TrainOptions& o, const TrainProgress& p, const TrainResult& r,
               const LiveDetail* d, nlohmann::json* j) {
  const double lifetime_s = std::chrono::duration<double>(o.function_timeout).count();
  (*j)["params"] = {{"model", o.model},
                    {"optimizer", OptimizerName(o.optimizer.kind)},
                    {"learning_rate", o.optimizer.learning_rate},
                    {"l1", o.optimizer.l1},
                    {"l2", o.optimizer.l2},
                    {"clip", o.optimizer.clip},
                    {"minibatch", o.minibatch},
                    {"workers", o.workers},
                    {"backend", o.backend_config.name},
                    {"epochs", o.epochs},
                    {"staleness", o.staleness},
                    {"function_timeout_s", lifetime_s},
                    {"function_memory_mb", o.function_memory_mb},
                    {"time_limit_s", o.time_limit_seconds},
                    {"target_loss", o.target_loss},
                    {"seed", o.seed}};
  (*j)["workers_timed_out"] = r.workers_timed_out;
  (*j)["workers_killed"] = r.workers_killed;
  (*j)["workers_hung"] = r.workers_hung;
  (*j)["checkpoints"] = {{"written", r.checkpoints_written}, {"failed", r.checkpoints_failed}};
  (*j)["iteration"] = TimesJson(r.iteration);  // merged over the ended workers
  nlohmann::json ended = nlohmann::json::array();
  const size_t first = r.functions.size() > 20 ? r.functions.size() - 20 : 0;
  for (size_t i = first; i < r.functions.size(); ++i) {
    const FunctionRecord& f = r.functions[i];
    ended.push_back({{"id", f.id}, {"state", FunctionStateName(f.state)}, {"reason", f.reason},
                     {"wall_seconds", f.wall_seconds}, {"samples", f.samples}});
  }
  (*j)["ended_workers"] = std::move(ended);  // the last 20 (workers_launched counts them all)
  TrainResult cost;
  cost.function_gb_seconds = r.function_gb_seconds;
  cost.workers_launched = r.workers_launched;
  cost.train_seconds = p.seconds;
  nlohmann::json live = nlohmann::json::array();
  nlohmann::json servers = nlohmann::json::array();
  if (d) {
    for (const LiveWorker& w : d->workers) {
      cost.function_gb_seconds += w.info.gb_seconds;
      nlohmann::json e = {{"id", w.info.id},
                          {"state", FunctionStateName(w.info.state)},
                          {"pid", w.info.pid},
                          {"wall_seconds", w.info.wall_seconds},
                          {"lifetime_left_s", lifetime_s > 0 ? nlohmann::json(std::max(
                                                                   0.0, lifetime_s - w.info.wall_seconds))
                                                             : nlohmann::json(nullptr)}};
      if (!w.stats_json.empty()) {
        if (auto s = ResultFromJson(w.stats_json); s.ok()) {
          e["samples"] = s->samples;
          e["items_acked"] = s->items_acked;
          e["train_loss"] = s->train_loss;
          e["server_faults"] = s->server_faults;
          e["iteration"] = TimesJson(s->times);
        }
      }
      live.push_back(std::move(e));
    }
    for (size_t i = 0; i < d->server_stats.size(); ++i) {
      auto s = nlohmann::json::parse(d->server_stats[i], nullptr, /*allow_exceptions=*/false);
      servers.push_back({{"address", i < o.servers.size() ? o.servers[i] : std::string()},
                         {"stats", s.is_discarded() ? nlohmann::json(nullptr) : s}});
    }
  }
  (*j)["live_workers"] = std::move(live);
  (*j)["servers"] = std::move(servers);
  (*j)["table"] = o.job_id + ".model";
  // Live: the ended functions plus the running ones so far; at the end, the result's own.
  EstimateCost(&cost);
  const TrainResult& c = r.state.empty() ? cost : r;
  (*j)["cost_usd"] = {{"functions", c.cost_functions_usd}, {"server", c.cost_server_usd},
                      {"total", c.cost_total_usd}};
}

}  // namespace

void WriteJobStatus(const std::string& dir, const TrainOptions& o, const TrainProgress& p,
                    const TrainResult& r, const LiveDetail* detail) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& h : r.history) {
    history.push_back({h.seconds, h.updates, h.samples, h.test_metric, h.test_auc});
  }
  static const auto started = std::chrono::system_clock::now();
  nlohmann::json j = {
      {"job_id", o.job_id},
      {"pid", static_cast<int>(getpid())},
      {"pid_start", ProcessStartTicks(static_cast<int>(getpid()))},
      {"state", p.state},
      {"store", o.store},  // where its result, model and checkpoints are (virga jobs prune)
      {"dataset", o.dataset},
      {"test", o.test_dataset},
      {"model", o.model},
      {"workers", o.workers},
      {"minibatch", o.minibatch},
      {"epochs", o.epochs},
      {"optimizer", OptimizerName(o.optimizer.kind)},
      {"learning_rate", o.optimizer.learning_rate},
      {"seconds", p.seconds},
      {"epoch", p.epoch},
      {"samples", p.samples},
      {"updates", p.updates},
      {"samples_per_second", p.samples_per_second},
      // Workers' bytes to and from the servers per trained row (null before any).
      {"bytes_per_sample", std::isfinite(p.bytes_per_sample) ? nlohmann::json(p.bytes_per_sample)
                                                              : nlohmann::json()},
      {"metric", p.metric},
      {"test_metric", p.test_metric},
      {"best_metric", p.best_metric},
      {"test_logloss", p.test_logloss},
      {"best_logloss", p.best_logloss},
      {"test_auc", p.test_auc},
      {"workers_alive", p.workers_alive},
      {"workers_launched", p.workers_launched},
      {"workers_failed", p.workers_failed},
      {"updated_at", std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count()},
      // The fourth is the model's primary metric (test_logloss, test_rmse).
      {"history_fields", {"seconds", "updates", "samples", "test_" + p.metric, "test_auc"}},
      {"history", std::move(history)},
  };
  (void)started;
  AddDetail(o, p, r, detail, &j);
  // Rewritten at every evaluation: atomic for readers, not worth an fsync.
  (void)WriteFileAtomically(
      dir + "/status.json",
      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
      {.durable = false});  // best effort
}

}  // namespace sched

Result<std::vector<JobEntry>> ListJobs(const std::string& registry_dir) {
  const std::string dir = registry_dir.empty() ? DefaultRegistryDir() : registry_dir;
  std::vector<std::pair<fs::file_time_type, JobEntry>> found;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return std::vector<JobEntry>{};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const fs::path status = e.path() / "status.json";
    std::ifstream f(status);
    if (!f) continue;
    std::stringstream ss;
    ss << f.rdbuf();
    JobEntry je;
    je.job_id = e.path().filename().string();
    je.status_json = ss.str();
    auto j = nlohmann::json::parse(je.status_json, nullptr, /*allow_exceptions=*/false);
    uint64_t pid_start = 0;
    if (j.is_object()) {
      je.state = j.value("state", std::string("unknown"));
      je.pid = j.value("pid", 0);
      pid_start = j.value("pid_start", uint64_t{0});
    }
    // The same process, not another that reuses its pid.
    je.alive = sched::ProcessAlive(je.pid, pid_start);
    if (!je.alive && (je.state == "running" || je.state == "starting")) je.state = "orphaned";
    auto t = fs::last_write_time(status, ec);
    found.emplace_back(t, std::move(je));
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<JobEntry> out;
  for (auto& [t, je] : found) out.push_back(std::move(je));
  return out;
}

Status RequestKill(const std::string& registry_dir, const std::string& job_id) {
  VIRGA_RETURN_IF_ERROR(sched::ValidateJobId(job_id));
  const std::string dir = (registry_dir.empty() ? DefaultRegistryDir() : registry_dir) + "/" + job_id;
  std::error_code ec;
  if (!fs::exists(dir + "/status.json", ec)) {
    return Status::NotFound("job '" + job_id + "' is not registered in " +
                            (registry_dir.empty() ? DefaultRegistryDir() : registry_dir));
  }
  std::ofstream f(dir + "/kill");
  if (!f) return Status::IOError("cannot write " + dir + "/kill");
  return Status::OK();
}

}  // namespace virga
