// The dashboard's data side, without HTTP: registry entries turned into the
// JSON of /api/jobs and /api/jobs/<id> and the Prometheus text of /metrics.
// Pure functions over JobEntry (train.h) plus one small stateful piece, the
// server request-rate tracker, so all of it is unit-tested without sockets.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "virga/train.h"

namespace virga::dash {

// Job ids accepted in URLs: 1..100 bytes of [A-Za-z0-9._-], not "." or ".."
// (so an id never leaves the registry directory).
bool ValidJobId(std::string_view id);

// The display state: the registered one, "orphaned" for a "running" job whose
// process is gone, "killing" for a running job with a pending kill request.
std::string DisplayState(const JobEntry& e, bool kill_requested);

// Requests per second of each parameter server, from the request counters
// the jobs copy into their status.json (about once a second). A rate is
// measured between two different snapshots of a server, whichever job
// reported them. Thread-safe.
class RateTracker {
 public:
  // Feeds every server entry of one status.json ("servers": [{address, stats}]).
  void Observe(const nlohmann::json& status);
  // Requests/s of `address` over its last two snapshots; -1 when unknown.
  double RequestsPerSecond(const std::string& address) const;

 private:
  struct Sample {
    double at = 0;      // status.json updated_at (unix seconds)
    double total = 0;   // requests_total
  };
  mutable std::mutex mu_;
  std::map<std::string, std::pair<Sample, Sample>> samples_;  // GUARDED_BY(mu_): previous, last
};

struct ApiOptions {
  std::string registry_dir;        // for kill-file checks
  size_t max_history_points = 600;
  size_t max_jobs = 200;
};

// One row of the experiments table: id, params, state, workers, rates,
// losses, elapsed, cost. With `history`: "history": {"t": [...],
// "loss": [...], "cost": [...], "samples": [...]} thinned to at most
// max_history_points (the last point always kept). Cost at a point is the
// job's current estimate prorated by time (docs/dashboard.md).
nlohmann::json JobSummary(const JobEntry& e, const ApiOptions& o, bool history);

// GET /api/jobs: {"registry": dir, "now": unix seconds, "jobs": [rows]}.
nlohmann::json JobsJson(const std::vector<JobEntry>& jobs, const ApiOptions& o, bool history);

// GET /api/jobs/<id>: {"summary": row with history, "status": status.json,
// "server_rates": {address: requests/s}}.
nlohmann::json JobDetailJson(const JobEntry& e, const ApiOptions& o, const RateTracker& rates);

// GET /metrics: Prometheus text format 0.0.4.
std::string MetricsText(const std::vector<JobEntry>& jobs, const ApiOptions& o,
                        const RateTracker& rates);

// "a\"b" for label values: backslash, double quote and newline escaped.
std::string EscapeLabel(std::string_view v);

}  // namespace virga::dash
