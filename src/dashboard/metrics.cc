// GET /metrics: the registry's jobs and their servers in Prometheus text
// format 0.0.4 (docs/dashboard.md lists every family).
#include <cmath>
#include <cstdio>
#include <map>

#include "dashboard/api.h"

namespace virga::dash {
namespace {

using nlohmann::json;

// Families are written whole (HELP, TYPE, then every sample), as the format asks.
class Families {
 public:
  void Add(const std::string& name, const char* type, const char* help, const std::string& labels,
           double value) {
    if (!std::isfinite(value)) return;
    Family& f = families_[name];
    if (f.type.empty()) {
      f.type = type;
      f.help = help;
      order_.push_back(name);
    }
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", value);
    f.samples += name + (labels.empty() ? "" : "{" + labels + "}") + " " + num + "\n";
  }
  std::string Text() const {
    std::string out;
    for (const std::string& name : order_) {
      const Family& f = families_.at(name);
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n" + f.samples;
    }
    return out;
  }

 private:
  struct Family {
    std::string type, help, samples;
  };
  std::map<std::string, Family> families_;
  std::vector<std::string> order_;
};

std::string Label(const char* k, std::string_view v) {
  return std::string(k) + "=\"" + EscapeLabel(v) + "\"";
}

double Num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

// Mean per-iteration phase times of a job's live workers (weighted by their
// iterations), else of its ended workers.
void AddIteration(const json& s, const std::string& job, Families* m) {
  static const char* kPhases[] = {"data_wait", "pull", "compute", "push"};
  double sum[4] = {}, n = 0;
  if (auto lw = s.find("live_workers"); lw != s.end() && lw->is_array()) {
    for (const json& w : *lw) {
      if (!w.contains("iteration") || !w["iteration"].is_object()) continue;
      const json& it = w["iteration"];
      const double k = Num(it, "iterations");
      if (!(k > 0)) continue;
      for (int p = 0; p < 4; ++p) sum[p] += k * Num(it, (std::string(kPhases[p]) + "_us").c_str());
      n += k;
    }
  }
  if (n == 0 && s.contains("iteration") && s["iteration"].is_object()) {
    const json& it = s["iteration"];
    n = Num(it, "iterations");
    if (!(n > 0)) return;
    for (int p = 0; p < 4; ++p) sum[p] = n * Num(it, (std::string(kPhases[p]) + "_us").c_str());
  }
  if (!(n > 0)) return;
  for (int p = 0; p < 4; ++p) {
    m->Add("virga_job_iteration_phase_seconds", "gauge",
           "Mean time per minibatch iteration by phase (pull/push: server latency seen by workers)",
           Label("job", job) + "," + Label("phase", kPhases[p]), sum[p] / n / 1e6);
  }
}

void AddServer(const std::string& address, const json& st, const RateTracker& rates,
               Families* m) {
  const std::string srv = Label("server", address);
  m->Add("virga_server_requests_total", "counter", "Requests served by a parameter server", srv,
         Num(st, "requests_total"));
  const double rps = rates.RequestsPerSecond(address);
  if (rps >= 0) {
    m->Add("virga_server_requests_per_second", "gauge",
           "Request rate of a parameter server between its last two reports", srv, rps);
  }
  m->Add("virga_server_errors_total", "counter", "Requests a parameter server answered with an error",
         srv, Num(st, "errors"));
  m->Add("virga_server_kv_keys", "gauge", "Keys in a parameter server's key-value store", srv,
         Num(st, "kv_keys"));
  if (auto req = st.find("requests"); req != st.end() && req->is_object()) {
    for (const auto& [op, n] : req->items()) {
      if (n.is_number()) {
        m->Add("virga_server_requests_by_opcode_total", "counter", "Requests by protocol opcode",
               srv + "," + Label("opcode", op), n.get<double>());
      }
    }
  }
  if (auto tables = st.find("tables"); tables != st.end() && tables->is_array()) {
    for (const json& t : *tables) {
      if (!t.is_object()) continue;
      const std::string l = srv + "," + Label("table", t.value("name", std::string()));
      m->Add("virga_server_table_rows", "gauge", "Rows of a table on a server", l, Num(t, "rows"));
      m->Add("virga_server_table_bytes", "gauge", "Bytes of a table on a server", l, Num(t, "bytes"));
      m->Add("virga_server_table_version", "counter", "Applied pushes of a table", l, Num(t, "version"));
      m->Add("virga_server_table_pulls_total", "counter", "Pull requests of a table", l, Num(t, "pulls"));
      m->Add("virga_server_table_pushes_total", "counter", "Push requests of a table", l, Num(t, "pushes"));
    }
  }
}

}  // namespace

std::string MetricsText(const std::vector<JobEntry>& jobs, const ApiOptions& o,
                        const RateTracker& rates) {
  Families m;
  std::map<std::string, double> by_state = {{"running", 0}, {"killing", 0}};
  // Each server once, from the freshest report of a live job.
  std::map<std::string, std::pair<double, json>> servers;
  for (size_t i = 0; i < jobs.size() && i < o.max_jobs; ++i) {
    const JobEntry& e = jobs[i];
    json s = json::parse(e.status_json, nullptr, /*allow_exceptions=*/false);
    if (!s.is_object()) s = json::object();
    const json row = JobSummary(e, o, /*history=*/false);
    const std::string state = row["state"].get<std::string>();
    by_state[state] += 1;
    const bool live = state == "running" || state == "killing";
    const std::string job = Label("job", e.job_id);
    auto add = [&](const char* name, const char* type, const char* help, const char* field) {
      if (row[field].is_number()) m.Add(name, type, help, job, row[field].get<double>());
    };
    m.Add("virga_job_running", "gauge", "1 while the job runs (or is being killed), else 0", job,
          live ? 1 : 0);
    add("virga_job_workers_alive", "gauge", "Worker functions alive", "workers_alive");
    add("virga_job_workers_launched_total", "counter", "Worker functions launched", "workers_launched");
    add("virga_job_workers_failed_total", "counter", "Worker functions that failed", "workers_failed");
    add("virga_job_samples_total", "counter", "Rows trained on", "samples");
    add("virga_job_updates_total", "counter", "Applied pushes (table version)", "updates");
    add("virga_job_samples_per_second", "gauge", "Rows trained per second (recent while running)",
        "samples_per_second");
    add("virga_job_updates_per_second", "gauge", "Applied pushes per second (recent while running)",
        "updates_per_second");
    add("virga_job_test_metric", "gauge",
        "The model's primary test metric (logloss, rmse) at the last evaluation", "test_metric");
    add("virga_job_best_test_metric", "gauge", "Best primary test metric so far", "best_metric");
    add("virga_job_test_logloss", "gauge", "Test logloss at the last evaluation", "test_logloss");
    add("virga_job_best_test_logloss", "gauge", "Best test logloss so far", "best_logloss");
    add("virga_job_test_auc", "gauge", "Test AUC at the last evaluation", "test_auc");
    add("virga_job_elapsed_seconds", "gauge", "Seconds since the job started", "seconds");
    add("virga_job_cost_usd", "gauge", "Estimated cost so far (docs/training.md prices)", "cost_usd");
    if (!live) continue;
    AddIteration(s, e.job_id, &m);
    const double at = Num(s, "updated_at");
    if (auto it = s.find("servers"); it != s.end() && it->is_array()) {
      for (const json& srv : *it) {
        if (!srv.is_object() || !srv.contains("stats") || !srv["stats"].is_object()) continue;
        const std::string a = srv.value("address", std::string());
        if (a.empty()) continue;
        auto found = servers.find(a);
        if (found == servers.end()) {
          servers.emplace(a, std::make_pair(at, srv["stats"]));
        } else if (at > found->second.first) {
          found->second = {at, srv["stats"]};
        }
      }
    }
  }
  for (const auto& [state, n] : by_state) {
    m.Add("virga_jobs", "gauge", "Registered jobs by state", Label("state", state), n);
  }
  for (const auto& [address, snap] : servers) AddServer(address, snap.second, rates, &m);
  return m.Text();
}

}  // namespace virga::dash
