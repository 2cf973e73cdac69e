// `virga jobs prune`: removes ended jobs from the registry and their objects
// from their store (jobs/<id>/: result, model, options; checkpoints/<id>/).
// A job whose process is alive is never pruned.
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/commands.h"
#include "virga/object_store.h"
#include "virga/train.h"

namespace virga::cli {
namespace {

struct PruneArgs {
  std::string registry;
  std::string older_than;           // "30s", "10m", "2h", "7d"; empty: any age
  std::vector<std::string> states;  // empty: every ended state
  int keep = 0;                     // the newest N selected are kept
  std::string store;                // for entries that do not name theirs
  bool dry_run = false;
};

// Seconds of "30s", "10m", "2h", "7d", "1w" (a bare number is seconds).
Result<double> ParseDuration(const std::string& text) {
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  static const std::map<std::string, double> units = {
      {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 604800}};
  auto unit = used > 0 ? units.find(text.substr(used)) : units.end();
  if (unit == units.end() || !(n >= 0) || !std::isfinite(n))
    return Status::InvalidArgument("--older-than '" + text +
                                   "': expected a duration such as 30s, 10m, 2h, 7d or 1w");
  return n * unit->second;
}

// Its state matches one of `states` ("failed" matches "failed: ...").
bool StateMatches(const std::string& state, const std::vector<std::string>& states) {
  if (states.empty()) return true;
  for (const std::string& s : states) {
    if (state == s || (state.rfind(s, 0) == 0 && state.size() > s.size() && state[s.size()] == ':'))
      return true;
  }
  return false;
}

// Deletes every object under `prefix`; the count deleted.
Result<size_t> DeletePrefix(ObjectStore& store, const std::string& prefix, bool dry_run) {
  VIRGA_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, store.List(prefix));
  if (dry_run) return objects.size();
  for (const ObjectInfo& o : objects) VIRGA_RETURN_IF_ERROR(store.Delete(o.key));
  return objects.size();
}

int RunPrune(const PruneArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga jobs prune: %s\n", s.ToString().c_str());
    return 1;
  };
  double older = -1;
  if (!a.older_than.empty()) {
    auto d = ParseDuration(a.older_than);
    if (!d.ok()) return fail(d.status());
    older = *d;
  }
  if (a.keep < 0) return fail(Status::InvalidArgument("--keep must be >= 0"));
  auto jobs = ListJobs(a.registry);  // newest first
  if (!jobs.ok()) return fail(jobs.status());
  const std::string registry = a.registry.empty() ? DefaultRegistryDir() : a.registry;
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  int selected = 0, pruned = 0, kept_alive = 0;
  size_t objects = 0;
  std::map<std::string, std::shared_ptr<ObjectStore>> stores;
  for (const JobEntry& e : *jobs) {
    if (e.alive) {
      kept_alive += StateMatches(e.state, a.states) ? 1 : 0;
      continue;
    }
    if (!StateMatches(e.state, a.states)) continue;
    const auto s = nlohmann::json::parse(e.status_json, nullptr, /*allow_exceptions=*/false);
    const double updated = s.is_object() ? s.value("updated_at", 0.0) : 0.0;
    if (older >= 0 && now - updated < older) continue;
    if (++selected <= a.keep) continue;
    // Its objects, in the store its entry names (else --store).
    std::string uri = s.is_object() ? s.value("store", std::string()) : "";
    if (uri.empty()) uri = a.store.empty() ? DefaultStoreUri() : a.store;
    if (!stores.count(uri)) {
      auto st = ObjectStore::Open(uri);
      if (!st.ok()) return fail(st.status().WithContext("job " + e.job_id + "'s store"));
      stores[uri] = std::move(st).value();
    }
    size_t n = 0;
    for (const std::string& prefix : {"jobs/" + e.job_id + "/", "checkpoints/" + e.job_id + "/"}) {
      auto got = DeletePrefix(*stores[uri], prefix, a.dry_run);
      if (!got.ok()) return fail(got.status().WithContext("job " + e.job_id));
      n += *got;
    }
    if (!a.dry_run) {
      std::error_code ec;
      std::filesystem::remove_all(registry + "/" + e.job_id, ec);
      if (ec) return fail(Status::IOError("removing " + registry + "/" + e.job_id + ": " + ec.message()));
    }
    std::printf("%s %s (%s, %zu objects in %s)\n", a.dry_run ? "would remove" : "removed",
                e.job_id.c_str(), e.state.c_str(), n, uri.c_str());
    ++pruned;
    objects += n;
  }
  std::printf("%s %d job%s and %zu objects; kept %d (--keep)%s\n",
              a.dry_run ? "dry run: would remove" : "pruned", pruned, pruned == 1 ? "" : "s",
              objects, std::min(selected, a.keep),
              kept_alive > 0 ? (", " + std::to_string(kept_alive) + " running").c_str() : "");
  return 0;
}

}  // namespace

void RegisterJobsPrune(CLI::App& jobs, int* exit_code) {
  auto a = std::make_shared<PruneArgs>();
  auto* cmd = jobs.add_subcommand(
      "prune", "Remove ended jobs: their registry entries and their objects in the store "
               "(result, model, options, checkpoints); running jobs are never removed");
  cmd->add_option("--older-than", a->older_than,
                  "Only jobs last updated longer ago than this: 30s, 10m, 2h, 7d, 1w");
  cmd->add_option("--state", a->states,
                  "Only jobs in this state (repeatable): done, killed, failed, orphaned, "
                  "diverged, time_limit, target_reached");
  cmd->add_option("--keep", a->keep, "Keep the newest N of the jobs selected")->capture_default_str();
  cmd->add_option("--registry", a->registry, "Registry dir (default $VIRGA_HOME/jobs, ~/.virga/jobs)");
  cmd->add_option("--store", a->store,
                  "Store of entries that do not name theirs (default $VIRGA_STORE)");
  cmd->add_flag("--dry-run", a->dry_run, "Only list what would be removed");
  cmd->callback([a, exit_code] { *exit_code = RunPrune(*a); });
}

}  // namespace virga::cli
