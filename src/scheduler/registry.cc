// The job registry: <dir>/<job>/status.json (written atomically by the job at
// every evaluation) and <dir>/<job>/kill (created by RequestKill).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "scheduler/job_internal.h"

namespace virga {

namespace fs = std::filesystem;

std::string DefaultRegistryDir() {
  if (const char* home = std::getenv("VIRGA_HOME"); home && *home) return std::string(home) + "/jobs";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.virga/jobs";
}

namespace sched {

void WriteJobStatus(const std::string& dir, const TrainOptions& o, const TrainProgress& p,
                    const TrainResult& r) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& h : r.history) {
    history.push_back({h.seconds, h.updates, h.samples, h.test_logloss, h.test_auc});
  }
  static const auto started = std::chrono::system_clock::now();
  nlohmann::json j = {
      {"job_id", o.job_id},
      {"pid", static_cast<int>(getpid())},
      {"state", p.state},
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
      {"test_logloss", p.test_logloss},
      {"best_logloss", p.best_logloss},
      {"test_auc", p.test_auc},
      {"workers_alive", p.workers_alive},
      {"workers_launched", p.workers_launched},
      {"workers_failed", p.workers_failed},
      {"updated_at", std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count()},
      {"history_fields", {"seconds", "updates", "samples", "test_logloss", "test_auc"}},
      {"history", std::move(history)},
  };
  (void)started;
  const std::string tmp = dir + "/status.json.tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!f) return;  // best effort
  }
  std::error_code ec;
  fs::rename(tmp, dir + "/status.json", ec);
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
    if (j.is_object()) {
      je.state = j.value("state", std::string("unknown"));
      je.pid = j.value("pid", 0);
    }
    je.alive = je.pid > 0 && ::kill(je.pid, 0) == 0;
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
