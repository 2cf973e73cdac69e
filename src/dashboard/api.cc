#include "dashboard/api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>

namespace virga::dash {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Columns of status.json "history" rows (registry.cc: history_fields); kLoss
// is the model's primary metric.
constexpr size_t kSeconds = 0, kUpdates = 1, kSamples = 2, kLoss = 3;

json Parse(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

double Num(const json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

// A finite number, else null (JSON has no NaN or infinity).
json Finite(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double Col(const json& row, size_t c) {
  return row.is_array() && row.size() > c && row[c].is_number() ? row[c].get<double>() : NAN;
}

// Per second over the last ~5 s of history (the last two points at least).
double RecentRate(const json& history, size_t col) {
  if (!history.is_array() || history.size() < 2) return NAN;
  const json& last = history.back();
  size_t i = history.size() - 2;
  while (i > 0 && Col(last, kSeconds) - Col(history[i], kSeconds) < 5) --i;
  const double dt = Col(last, kSeconds) - Col(history[i], kSeconds);
  return dt > 0 ? (Col(last, col) - Col(history[i], col)) / dt : NAN;
}

bool KillRequested(const ApiOptions& o, const std::string& job) {
  std::error_code ec;
  return !o.registry_dir.empty() && fs::exists(o.registry_dir + "/" + job + "/kill", ec);
}

bool Live(const std::string& state) { return state == "running" || state == "killing"; }

json Params(const json& s) {
  if (auto it = s.find("params"); it != s.end() && it->is_object()) return *it;
  // Entries written before "params" existed.
  json p = json::object();
  for (const char* k : {"model", "optimizer", "learning_rate", "minibatch", "workers", "epochs"}) {
    if (auto it = s.find(k); it != s.end()) p[k] = *it;
  }
  return p;
}

json HistoryColumns(const json& history, double cost_now, double seconds_now, size_t max_points) {
  json t = json::array(), loss = json::array(), cost = json::array(), samples = json::array();
  const size_t n = history.is_array() ? history.size() : 0;
  const size_t keep = std::max<size_t>(2, max_points);
  const double step = n > keep ? static_cast<double>(n - 1) / static_cast<double>(keep - 1) : 1.0;
  size_t prev = SIZE_MAX;
  for (double x = 0; n > 0; x += step) {
    const size_t i = std::min(n - 1, static_cast<size_t>(std::llround(x)));
    if (i != prev) {
      const json& row = history[i];
      const double sec = Col(row, kSeconds);
      t.push_back(Finite(sec));
      loss.push_back(Finite(Col(row, kLoss)));
      samples.push_back(Finite(Col(row, kSamples)));
      cost.push_back(Finite(seconds_now > 0 ? cost_now * std::min(1.0, sec / seconds_now) : 0.0));
      prev = i;
    }
    if (i == n - 1) break;
  }
  return {{"t", std::move(t)}, {"loss", std::move(loss)}, {"cost", std::move(cost)},
          {"samples", std::move(samples)}};
}

// The latest checkpoint failure of the job's servers ("" if their last
// checkpoints succeeded), from their stats in the registry entry.
std::string CheckpointError(const json& s) {
  if (!s.contains("servers") || !s["servers"].is_array()) return "";
  for (const json& srv : s["servers"]) {
    if (!srv.is_object() || !srv.contains("stats") || !srv["stats"].is_object()) continue;
    const json& st = srv["stats"];
    if (!st.contains("checkpoints") || !st["checkpoints"].is_object()) continue;
    const std::string err = st["checkpoints"].value("last_error", std::string());
    if (!err.empty()) return srv.value("address", std::string()) + ": " + err;
  }
  return "";
}

json Summary(const JobEntry& e, const json& s, const ApiOptions& o, bool with_history) {
  const std::string state = DisplayState(e, KillRequested(o, e.job_id));
  const json empty = json::array();
  const json& history = s.contains("history") ? s["history"] : empty;
  const double seconds = Num(s, "seconds");
  const double cost = s.contains("cost_usd") ? Num(s["cost_usd"], "total", NAN) : NAN;
  double sps = Num(s, "samples_per_second", NAN), ups = seconds > 0 ? Num(s, "updates") / seconds : NAN;
  if (Live(state)) {  // live rates; the averages once it has ended
    if (double r = RecentRate(history, kSamples); std::isfinite(r)) sps = r;
    if (double r = RecentRate(history, kUpdates); std::isfinite(r)) ups = r;
  }
  json row = {
      {"job_id", e.job_id},
      {"state", state},
      {"registered_state", e.state},
      {"alive", e.alive},
      {"pid", e.pid},
      {"kill_requested", state == "killing"},
      {"dataset", s.value("dataset", std::string())},
      {"model", s.value("model", std::string())},
      {"params", Params(s)},
      {"workers_alive", Live(state) ? Num(s, "workers_alive") : 0.0},
      {"workers_launched", Num(s, "workers_launched")},
      {"workers_failed", Num(s, "workers_failed")},
      {"samples", Num(s, "samples")},
      {"updates", Num(s, "updates")},
      {"samples_per_second", Finite(sps)},
      {"bytes_per_sample", Finite(Num(s, "bytes_per_sample", NAN))},
      {"updates_per_second", Finite(ups)},
      // The model's primary metric ("logloss", "rmse"): what the curves show.
      {"metric", s.value("metric", std::string("logloss"))},
      {"test_metric", Finite(Num(s, "test_metric", Num(s, "test_logloss", NAN)))},
      {"best_metric", Finite(Num(s, "best_metric", Num(s, "best_logloss", NAN)))},
      {"test_logloss", Finite(Num(s, "test_logloss", NAN))},
      {"best_logloss", Finite(Num(s, "best_logloss", NAN))},
      {"test_auc", Finite(Num(s, "test_auc", NAN))},
      {"seconds", seconds},
      {"epoch", Num(s, "epoch")},
      {"epochs", Num(s, "epochs")},
      {"cost_usd", Finite(cost)},
      {"updated_at", Num(s, "updated_at")},
      // A checkpoint that could not be written (docs/training.md, "Faults").
      {"checkpoints_failed", s.contains("checkpoints") ? Num(s["checkpoints"], "failed") : 0.0},
      {"checkpoint_error", CheckpointError(s)},
  };
  // A job whose history is empty has not been evaluated yet: no loss to show.
  if (!history.is_array() || history.empty()) {
    row["test_logloss"] = row["best_logloss"] = row["test_metric"] = row["best_metric"] = nullptr;
  }
  if (with_history) {
    row["history"] = HistoryColumns(history, std::isfinite(cost) ? cost : 0.0,
                                    history.is_array() && !history.empty()
                                        ? Col(history.back(), kSeconds) : seconds,
                                    o.max_history_points);
  }
  return row;
}

double NowUnix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

bool ValidJobId(std::string_view id) {
  if (id.empty() || id.size() > 100 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

std::string DisplayState(const JobEntry& e, bool kill_requested) {
  if (e.state != "running" && e.state != "starting") return e.state.empty() ? "unknown" : e.state;
  if (!e.alive) return "orphaned";
  return kill_requested ? "killing" : e.state;
}

void RateTracker::Observe(const json& status) {
  auto servers = status.find("servers");
  if (servers == status.end() || !servers->is_array()) return;
  const double at = Num(status, "updated_at");
  std::lock_guard lock(mu_);
  for (const json& s : *servers) {
    if (!s.is_object() || !s.contains("stats") || !s["stats"].is_object()) continue;
    const std::string address = s.value("address", std::string());
    if (address.empty()) continue;
    const Sample now{at, Num(s["stats"], "requests_total")};
    auto& [prev, last] = samples_[address];
    if (now.at <= last.at) continue;
    // Keep the previous sample about a second back, so close reports of
    // jobs sharing a server do not make the rate jumpy.
    if (prev.at == 0 || last.at - prev.at >= 0.9) prev = last;
    last = now;
  }
}

double RateTracker::RequestsPerSecond(const std::string& address) const {
  std::lock_guard lock(mu_);
  auto it = samples_.find(address);
  if (it == samples_.end()) return -1;
  const auto& [prev, last] = it->second;
  if (prev.at <= 0 || last.at <= prev.at) return -1;
  return std::max(0.0, (last.total - prev.total) / (last.at - prev.at));
}

json JobSummary(const JobEntry& e, const ApiOptions& o, bool history) {
  return Summary(e, Parse(e.status_json), o, history);
}

json JobsJson(const std::vector<JobEntry>& jobs, const ApiOptions& o, bool history) {
  json rows = json::array();
  for (size_t i = 0; i < jobs.size() && i < o.max_jobs; ++i) {
    rows.push_back(JobSummary(jobs[i], o, history));
  }
  return {{"registry", o.registry_dir}, {"now", NowUnix()}, {"jobs", std::move(rows)},
          {"jobs_total", jobs.size()}};
}

json JobDetailJson(const JobEntry& e, const ApiOptions& o, const RateTracker& rates) {
  json s = Parse(e.status_json);
  json out = {{"summary", Summary(e, s, o, true)}};
  json r = json::object();
  if (auto it = s.find("servers"); it != s.end() && it->is_array()) {
    for (const json& srv : *it) {
      if (!srv.is_object()) continue;
      const std::string a = srv.value("address", std::string());
      const double rps = rates.RequestsPerSecond(a);
      if (!a.empty()) r[a] = rps >= 0 ? json(rps) : json(nullptr);
    }
  }
  out["server_rates"] = std::move(r);
  s.erase("history");  // the summary carries it, thinned
  out["status"] = std::move(s);
  return out;
}

std::string EscapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace virga::dash
