// `virga jobs` (list registered jobs), `virga kill JOB` (stop one, in any
// process) and `virga search` (a hyper-parameter search: experiments run
// concurrently in this process as TrainJobs sharing one embedded parameter
// server and one compute backend, each with its own table; each job writes
// its result to the store, the search its summary at
// searches/<search-id>/result.json).
//
// `--policy asha` stops experiments by successive halving in epochs
// (include/virga/successive_halving.h, the same rule as the Python package's).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "common/time_format.h"
#include "ps/server.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "virga/backend.h"
#include "virga/dataset.h"
#include "virga/model.h"
#include "virga/object_store.h"
#include "virga/successive_halving.h"
#include "virga/train.h"

namespace virga::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}

int RunJobs(const std::string& registry, bool json) {
  auto jobs = ListJobs(registry);
  if (!jobs.ok()) {
    std::fprintf(stderr, "virga jobs: %s\n", jobs.status().ToString().c_str());
    return 1;
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const JobEntry& e : *jobs) {
      auto s = nlohmann::json::parse(e.status_json, nullptr, false);
      out.push_back({{"job_id", e.job_id}, {"state", e.state}, {"pid", e.pid},
                     {"alive", e.alive}, {"status", s.is_discarded() ? nullptr : s}});
    }
    std::printf("%s\n", out.dump(1).c_str());
    return 0;
  }
  std::printf("%-36s %-12s %-5s %8s %10s %10s %9s\n", "JOB", "STATE", "ALIVE", "EPOCHS",
              "TEST LOSS", "BEST", "ELAPSED");
  for (const JobEntry& e : *jobs) {
    auto s = nlohmann::json::parse(e.status_json, nullptr, false);
    if (s.is_discarded()) s = nlohmann::json::object();
    const std::string epochs = std::to_string(s.value("epoch", 0)) + "/" +
                               std::to_string(s.value("epochs", 0));
    std::string state = e.state;
    if (state == "running" && !e.alive) state = "orphaned";
    std::printf("%-36s %-12s %-5s %8s %10.4f %10.4f %8.1fs\n", e.job_id.c_str(), state.c_str(),
                e.alive ? "yes" : "no", epochs.c_str(),
                Num(s, s.contains("test_metric") ? "test_metric" : "test_logloss"),
                Num(s, s.contains("best_metric") ? "best_metric" : "best_logloss"), Num(s, "seconds"));
  }
  return 0;
}

int RunKill(const std::string& registry, const std::string& job) {
  Status s = RequestKill(registry, job);
  if (!s.ok()) {
    std::fprintf(stderr, "virga kill: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("kill requested: %s\n", job.c_str());
  return 0;
}

// ---- search ------------------------------------------------------------------

struct SearchArgs {
  TrainOptions base;
  std::vector<std::string> grid;  // "name=v1,v2,..."
  std::string optimizer;
  float learning_rate = 0;
  uint32_t max_concurrent = 3;
  std::string policy = "grid";
  double eta = 3;
  double min_resource = 0;  // epochs; 0 = epochs / eta^2
  std::string json_out;
  std::string search_id;  // empty: "search-<utc time>-<random>"
  BackendFlags backend;
  bool quiet = false;
};

using Params = std::vector<std::pair<std::string, std::string>>;

// Sets one grid parameter on `o`; InvalidArgument naming it if unknown or bad.
Status SetParam(TrainOptions* o, const std::string& name, const std::string& value) {
  try {
    size_t used = 0;
    auto whole = [&](size_t n) {
      if (n != value.size()) throw std::invalid_argument(value);
    };
    if (name == "learning_rate") {
      o->optimizer.learning_rate = std::stof(value, &used), whole(used);
    } else if (name == "l1") {
      o->optimizer.l1 = std::stof(value, &used), whole(used);
    } else if (name == "l2") {
      o->optimizer.l2 = std::stof(value, &used), whole(used);
    } else if (name == "clip") {
      o->optimizer.clip = std::stof(value, &used), whole(used);
    } else if (name == "minibatch") {
      o->minibatch = static_cast<uint32_t>(std::stoul(value, &used)), whole(used);
    } else if (name == "workers") {
      o->workers = static_cast<uint32_t>(std::stoul(value, &used)), whole(used);
    } else if (name == "epochs") {
      o->epochs = static_cast<uint32_t>(std::stoul(value, &used)), whole(used);
    } else if (name == "staleness") {
      o->staleness = std::stoi(value, &used), whole(used);
    } else if (name == "rank") {
      o->rank = static_cast<uint32_t>(std::stoul(value, &used)), whole(used);
    } else if (name == "classes") {
      o->classes = static_cast<uint32_t>(std::stoul(value, &used)), whole(used);
    } else if (name == "optimizer") {
      auto k = ParseOptimizerName(value);
      if (!k.ok()) return k.status();
      o->optimizer.kind = *k;
    } else {
      return Status::InvalidArgument(
          "--grid " + name + ": unknown parameter (learning_rate, l1, l2, clip, minibatch, "
          "workers, epochs, staleness, optimizer, rank, classes)");
    }
  } catch (const std::exception&) {
    return Status::InvalidArgument("--grid " + name + ": bad value '" + value + "'");
  }
  return Status::OK();
}

Result<std::vector<Params>> ExpandGrid(const std::vector<std::string>& specs) {
  std::vector<Params> out{{}};
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
      return Status::InvalidArgument("--grid '" + spec + "': expected name=v1,v2,...");
    const std::string name = spec.substr(0, eq);
    std::vector<std::string> values;
    std::stringstream ss(spec.substr(eq + 1));
    for (std::string v; std::getline(ss, v, ',');)
      if (!v.empty()) values.push_back(v);
    std::vector<Params> next;
    for (const Params& p : out) {
      for (const std::string& v : values) {
        Params q = p;
        q.emplace_back(name, v);
        next.push_back(std::move(q));
      }
    }
    out = std::move(next);
  }
  return out;
}

struct Experiment {
  size_t index = 0;
  Params params;
  TrainOptions options;
  std::unique_ptr<TrainJob> job;
  std::thread thread;
  std::atomic<bool> finished{false};
  TrainResult result;
  std::string error;
  bool started = false;
  double stopped_at = 0;      // rung where successive halving stopped it; 0 = not stopped
  std::vector<double> passed;  // rungs decided
  TrainProgress last;
};

std::atomic<bool> g_interrupted{false};
void OnSearchSignal(int) { g_interrupted = true; }

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned b = rd() & 0xff;
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

std::string ParamsText(const Params& p) {
  std::string s;
  for (const auto& [k, v] : p) s += (s.empty() ? "" : " ") + k + "=" + v;
  return s;
}

std::string StateOf(const Experiment& e) {
  if (!e.error.empty()) return "failed: " + e.error;
  if (!e.started) return "pending";
  if (!e.finished) return "running";
  if (e.stopped_at > 0 && e.result.state == "killed") return "stopped";
  return e.result.state;
}

int RunSearch(SearchArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga search: %s\n", s.ToString().c_str());
    return 1;
  };
  spdlog::set_level(spdlog::level::warn);
  if (a.policy != "grid" && a.policy != "asha")
    return fail(Status::InvalidArgument("--policy: grid or asha, got '" + a.policy + "'"));
  if (a.eta <= 1) return fail(Status::InvalidArgument("--eta must be > 1"));
  auto model = ParseModelName(a.base.model);
  if (!model.ok()) return fail(model.status());
  const ModelInfo& info = ModelInfoOf(*model);
  if (info.own_optimizer && a.optimizer.empty()) {  // the model's defaults, l1/l2 flags kept
    const OptimizerConfig flags = a.base.optimizer;
    a.base.optimizer = info.optimizer;
    if (flags.l1 != 0) a.base.optimizer.l1 = flags.l1;
    if (flags.l2 != 0) a.base.optimizer.l2 = flags.l2;
  }
  const std::string metric = PrimaryMetric(info.task);
  if (!a.optimizer.empty()) {
    auto k = ParseOptimizerName(a.optimizer);
    if (!k.ok()) return fail(k.status());
    a.base.optimizer.kind = *k;
  }
  if (a.learning_rate > 0) a.base.optimizer.learning_rate = a.learning_rate;
  auto grid = ExpandGrid(a.grid);
  if (!grid.ok()) return fail(grid.status());
  auto backend_config = a.backend.Config();
  if (!backend_config.ok()) return fail(backend_config.status());
  if (a.search_id.empty()) a.search_id = "search-" + UtcNowCompact() + "-" + RandomHex(3);
  if (Status s = ValidateObjectKey(SearchResultKey(a.search_id)); !s.ok())
    return fail(s.WithContext("--search-id"));
  auto store = ObjectStore::Open(a.base.store);
  if (!store.ok()) return fail(store.status());
  auto manifest = ReadManifest(**store, a.base.dataset);
  if (!manifest.ok()) return fail(manifest.status());
  const double train_rows = static_cast<double>(std::max<uint64_t>(1, manifest->train_rows));

  // One embedded server and one backend for every experiment.
  ps::PsServerOptions so;
  so.net.token = RandomHex(16);
  ps::PsServer server(so);
  if (Status s = server.Start(); !s.ok()) return fail(s);
  auto backend = MakeBackend(*backend_config);
  if (!backend.ok()) return fail(backend.status());
  std::shared_ptr<ComputeBackend> shared_backend(std::move(*backend));

  std::vector<std::unique_ptr<Experiment>> exps;
  for (size_t i = 0; i < grid->size(); ++i) {
    auto e = std::make_unique<Experiment>();
    e->index = i;
    e->params = (*grid)[i];
    e->options = a.base;
    e->options.servers = {"127.0.0.1:" + std::to_string(server.port())};
    e->options.token = so.net.token;
    e->options.backend = shared_backend;
    e->options.job_id.clear();
    for (const auto& [k, v] : e->params) {
      if (Status s = SetParam(&e->options, k, v); !s.ok()) return fail(s);
    }
    exps.push_back(std::move(e));
  }
  std::signal(SIGINT, OnSearchSignal);
  std::signal(SIGTERM, OnSearchSignal);
  const bool tty = isatty(STDERR_FILENO) && !a.quiet;
  if (!a.quiet) {
    std::fprintf(stderr,
                 "virga search: %s, %zu experiments, %u at once, policy %s, server 127.0.0.1:%u, "
                 "backend %s\n",
                 a.search_id.c_str(), exps.size(), a.max_concurrent, a.policy.c_str(),
                 server.port(), std::string(shared_backend->name()).c_str());
  }

  auto halving = SuccessiveHalving::Create(a.eta, a.min_resource);
  if (!halving.ok()) return fail(halving.status());
  std::vector<SuccessiveHalving::Point> points;
  const auto t0 = Clock::now();
  auto last_line = Clock::now() - std::chrono::hours(1);
  bool killed_all = false;
  while (true) {
    size_t running = 0, pending = 0;
    for (auto& e : exps) {
      if (e->started && !e->finished) ++running;
      if (!e->started && e->error.empty()) ++pending;
    }
    if (g_interrupted && !killed_all) {
      killed_all = true;
      for (auto& e : exps) {
        if (!e->started && e->error.empty()) e->error = "cancelled";
        if (e->started && !e->finished) e->job->Kill();
      }
      continue;
    }
    if (running == 0 && pending == 0) break;
    // Start experiments up to the concurrency limit.
    for (auto& e : exps) {
      if (running >= a.max_concurrent) break;
      if (e->started || !e->error.empty()) continue;
      auto job = TrainJob::Create(e->options);
      if (!job.ok()) {
        e->error = job.status().ToString();
        continue;
      }
      e->job = std::move(*job);
      e->started = true;
      ++running;
      Experiment* ep = e.get();
      e->thread = std::thread([ep] {
        auto r = ep->job->Run();
        if (r.ok()) {
          ep->result = std::move(*r);
        } else {
          ep->error = r.status().ToString();
        }
        ep->finished = true;
      });
    }
    // Successive halving: decide every experiment that reached a new rung.
    for (auto& e : exps) {
      if (!e->started || e->finished) continue;
      e->last = e->job->progress();
      if (a.policy != "asha" || e->stopped_at > 0 || e->last.state != "running") continue;
      points.clear();
      for (const HistoryPoint& h : e->job->history())
        points.push_back({h.seconds, static_cast<double>(h.samples), h.test_metric});
      for (double r : halving->Rungs(e->job->options().epochs)) {
        if (std::find(e->passed.begin(), e->passed.end(), r) != e->passed.end()) continue;
        const std::optional<double> loss = halving->LossAt(points, r, train_rows);
        if (!loss) break;
        e->passed.push_back(r);
        if (!halving->Decide(r, *loss)) {
          e->stopped_at = r;
          e->job->Kill();
          break;
        }
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    running = pending = 0;
    for (auto& e : exps) {
      if (e->started && !e->finished) ++running;
      if (!e->started && e->error.empty()) ++pending;
    }
    if (!a.quiet && Clock::now() - last_line >= std::chrono::milliseconds(tty ? 500 : 5000)) {
      last_line = Clock::now();
      size_t done = 0, stopped = 0;
      double best = INFINITY;
      for (auto& e : exps) {
        const std::string st = StateOf(*e);
        done += st != "pending" && st != "running";
        stopped += st == "stopped";
        if (e->started && e->last.samples > 0 && std::isfinite(e->last.test_metric))
          best = std::min(best, e->last.test_metric);
      }
      std::fprintf(stderr, "%s[%6.1fs] %zu running, %zu pending, %zu ended (%zu stopped early)  best test %s %.4f%s",
                   tty ? "\r" : "", secs, running, pending, done, stopped, metric.c_str(), best,
                   tty ? "   " : "\n");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (auto& e : exps) {
    if (e->thread.joinable()) e->thread.join();
    e->job.reset();  // drops its table on the shared server
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  if (tty) std::fputc('\n', stderr);

  nlohmann::json rows = nlohmann::json::array();
  const Experiment* best = nullptr;
  std::printf("%3s  %-10s %-36s %9s %9s %8s %8s %10s  %s\n", "#", "STATE", "JOB", "TEST LOSS",
              "BEST", "EPOCHS", "SECONDS", "COST $", "PARAMS");
  for (auto& e : exps) {
    const std::string st = StateOf(*e);
    double best_loss = INFINITY;
    for (const auto& h : e->result.history)
      if (std::isfinite(h.test_metric)) best_loss = std::min(best_loss, h.test_metric);
    std::printf("%3zu  %-10s %-36s %9.4f %9.4f %8u %8.1f %10.6f  %s\n", e->index,
                st.substr(0, 10).c_str(), e->result.job_id.c_str(), e->result.test_metric,
                best_loss, e->result.epochs, e->result.train_seconds, e->result.cost_total_usd,
                ParamsText(e->params).c_str());
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [k, v] : e->params) params[k] = v;
    rows.push_back({{"index", e->index}, {"params", params}, {"state", st},
                    {"job_id", e->result.job_id}, {"metric", metric},
                    {"test_" + metric, e->result.test_metric},
                    {"best_" + metric, std::isfinite(best_loss) ? nlohmann::json(best_loss) : nullptr},
                    {"epochs", e->result.epochs}, {"seconds", e->result.train_seconds},
                    {"cost_usd", e->result.cost_total_usd},
                    {"stopped_at", e->stopped_at > 0 ? nlohmann::json(e->stopped_at) : nullptr}});
    const bool usable = e->error.empty() && e->started && st != "diverged" &&
                        std::isfinite(e->result.test_metric);
    if (usable && (!best || e->result.test_metric < best->result.test_metric)) best = e.get();
  }
  if (best) {
    std::printf("best: #%zu %s  test %s %.4f  |  wall %.1f s\n", best->index,
                ParamsText(best->params).c_str(), metric.c_str(), best->result.test_metric, wall);
  }
  const nlohmann::json out = {{"search_id", a.search_id},
                              {"policy", a.policy},
                              {"model", a.base.model},
                              {"metric", metric},
                              {"backend", std::string(shared_backend->name())},
                              {"wall_seconds", wall},
                              {"experiments", rows},
                              {"best_index", best ? nlohmann::json(best->index) : nullptr}};
  const std::string text = out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (Status s = (*store)->Put(SearchResultKey(a.search_id), text); !s.ok())
    return fail(s.WithContext("search result"));
  if (!a.quiet) {
    std::fprintf(stderr, "virga search: result JSON in %s at %s\n", a.base.store.c_str(),
                 SearchResultKey(a.search_id).c_str());
  }
  if (!a.json_out.empty()) {  // a local copy
    if (Status s = WriteFileAtomically(a.json_out, text); !s.ok()) return fail(s);
  }
  server.Stop();
  return best ? 0 : 1;
}

}  // namespace

void RegisterJobs(CLI::App& app, int* exit_code) {
  auto registry = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto* jobs = app.add_subcommand("jobs", "List training jobs registered by any process");
  jobs->add_option("--registry", *registry, "Registry dir (default $VIRGA_HOME/jobs, ~/.virga/jobs)");
  jobs->add_flag("--json", *json, "JSON output");
  jobs->require_subcommand(0, 1);
  RegisterJobsPrune(*jobs, exit_code);
  jobs->callback([=] {
    if (jobs->get_subcommands().empty()) *exit_code = RunJobs(*registry, *json);
  });

  auto kill_job = std::make_shared<std::string>();
  auto* kill = app.add_subcommand("kill", "Stop a registered training job (in any process)");
  kill->add_option("job", *kill_job, "Job id")->required();
  kill->add_option("--registry", *registry, "Registry dir");
  kill->callback([=] { *exit_code = RunKill(*registry, *kill_job); });

  auto a = std::make_shared<SearchArgs>();
  TrainOptions& o = a->base;
  auto* search = app.add_subcommand(
      "search", "Hyper-parameter search: concurrent jobs on one embedded server");
  o.store = DefaultStoreUri();
  search->add_option("--store", o.store,
                     "Object store URI: the datasets, the jobs' results and the search's")
      ->capture_default_str();
  search->add_option("--dataset", o.dataset, "Training dataset")->required();
  search->add_option("--test", o.test_dataset, "Evaluation dataset");
  search->add_option("--model", o.model, ModelHelp())->capture_default_str();
  search->add_option("--rank", o.rank, "mf, fm: factors per key; 0 = the model's default");
  search->add_option("--grid", a->grid, "name=v1,v2,... (repeatable): learning_rate, l1, l2, "
                     "clip, minibatch, workers, epochs, staleness, optimizer, rank, classes")->required();
  search->add_option("--workers", o.workers, "Workers per experiment")->capture_default_str();
  search->add_option("--epochs", o.epochs, "Epochs per experiment; 0 = auto")->capture_default_str();
  search->add_option("--optimizer", a->optimizer, "Base optimizer");
  search->add_option("--learning-rate", a->learning_rate, "Base learning rate");
  search->add_option("--minibatch", o.minibatch, "Base minibatch; 0 = auto");
  search->add_option("--eval-interval", o.eval_interval_seconds, "Seconds between evaluations")
      ->capture_default_str();
  search->add_option("--max-concurrent", a->max_concurrent, "Experiments at once")
      ->capture_default_str();
  search->add_option("--policy", a->policy, "grid (every run to its end) | asha (successive "
                     "halving: stop the worse runs at rungs)")->capture_default_str();
  search->add_option("--eta", a->eta, "asha: keep 1/eta at each rung")->capture_default_str();
  search->add_option("--min-resource", a->min_resource, "asha: first rung, epochs (0: epochs/eta^2)");
  search->add_option("--registry", o.registry_dir, "Registry dir for `virga jobs` / `virga kill`");
  search->add_option("--seed", o.seed, "Shuffle and init seed")->capture_default_str();
  search->add_option("--json-out", a->json_out,
                     "Also write the summary JSON to this local file (it is always written to "
                     "the store, at searches/<search-id>/result.json)");
  search->add_option("--search-id", a->search_id,
                     "Search id (default: generated, search-<utc time>-<random>)");
  search->add_flag("--quiet", a->quiet, "No progress output");
  a->backend.Add(search);
  search->callback([a, exit_code] { *exit_code = RunSearch(*a); });
}

}  // namespace virga::cli
