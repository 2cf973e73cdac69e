// Fake job registries for the dashboard's tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace virga::dash::testing {

// A fresh empty directory, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "virga-dash-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A status.json as the scheduler writes it (registry.cc), for job `id` run
// by process `pid`, with `points` evaluations one second apart.
inline nlohmann::json FakeStatus(const std::string& id, const std::string& state, int pid,
                                 int points, double first_loss) {
  nlohmann::json history = nlohmann::json::array();
  for (int i = 0; i < points; ++i) {
    history.push_back({1.0 + i, 100.0 * (i + 1), 1000.0 * (i + 1), first_loss - 0.01 * i, 0.7});
  }
  const double seconds = points;
  return {{"job_id", id},
          {"pid", pid},
          {"state", state},
          {"dataset", "synth"},
          {"model", "lr"},
          {"seconds", seconds},
          {"epoch", 1},
          {"epochs", 5},
          {"samples", 1000.0 * points},
          {"updates", 100.0 * points},
          {"samples_per_second", points ? 1000.0 * points / seconds : 0.0},
          {"bytes_per_sample", 126.5},
          {"test_logloss", first_loss - 0.01 * (points - 1)},
          {"best_logloss", first_loss - 0.01 * (points - 1)},
          {"test_auc", 0.7},
          {"workers_alive", 2},
          {"workers_launched", 3},
          {"workers_failed", 1},
          {"updated_at", 1700000000.0 + points},
          {"history_fields", {"seconds", "updates", "samples", "test_logloss", "test_auc"}},
          {"history", history},
          {"params", {{"optimizer", "ftrl"}, {"learning_rate", 0.1}, {"minibatch", 20}}},
          {"cost_usd", {{"functions", 0.001}, {"server", 0.002}, {"total", 0.003}}},
          {"table", id + ".model"},
          {"live_workers",
           {{{"id", 7}, {"state", "running"}, {"pid", 1234}, {"wall_seconds", 2.5},
             {"lifetime_left_s", 897.5}, {"samples", 500},
             {"iteration", {{"iterations", 100}, {"data_wait_us", 1}, {"pull_us", 20},
                            {"compute_us", 30}, {"push_us", 4}, {"p50_us", 50}, {"p99_us", 90}}}}}},
          {"servers",
           {{{"address", "127.0.0.1:4000"},
             {"stats", {{"requests_total", 5000 + 100 * points}, {"errors", 0}, {"kv_keys", 3},
                        {"requests", {{"3", 4000}}},
                        {"tables", {{{"name", id + ".model"}, {"kind", "sparse"}, {"rows", 10},
                                     {"bytes", 400}, {"version", 100}, {"pulls", 5},
                                     {"pushes", 6}}}}}}}}}};
}

inline void WriteStatus(const std::string& registry, const nlohmann::json& status) {
  const std::string dir = registry + "/" + status["job_id"].get<std::string>();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/status.json") << status.dump();
}

}  // namespace virga::dash::testing
