// `virga bench train`: per-iteration time breakdown of training (data wait,
// pull, compute, push) for minibatch 20 and 200 with 1, 2 and 4 workers, in
// two placements: `same_cpu` (the embedded server and every worker pinned to
// CPU 0) and `default` (unpinned). Data: a generated Criteo-format set.
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "tools/commands.h"
#include "virga/datagen.h"
#include "virga/ingest.h"
#include "virga/train.h"

namespace virga::cli {
namespace {

struct BenchTrainArgs {
  uint64_t rows = 200'000;
  double seconds = 3;
  std::vector<uint32_t> minibatches{20, 200};
  std::vector<uint32_t> workers{1, 2, 4};
  std::vector<std::string> placements{"same_cpu", "default"};
  std::vector<std::string> send_schedules{"auto"};
  std::vector<double> rtt_us{0};  // emulated round trips (TrainOptions::emulate_one_way_delay x 2)
  double mbps = 0;                // emulated bandwidth per connection; 0: none
  std::string dir;
  std::string json_out;
  bool keep = false;
};

Status SetAffinity(bool pin) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (pin) {
    CPU_SET(0, &set);
  } else {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n; ++i) CPU_SET(i, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) return Status::IOError("sched_setaffinity failed");
  return Status::OK();
}

// Pins every thread of this process (the embedded server's too): affinity is
// per thread, so it is set before the job (and its server threads) start.
int BenchTrain(BenchTrainArgs& a) {
  namespace fs = std::filesystem;
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "virga bench train: %s\n", m.c_str());
    return 1;
  };
  spdlog::set_level(spdlog::level::warn);  // the embedded server's connection logs
  const bool own_dir = a.dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/virga-bench-train-XXXXXX";
    if (!mkdtemp(tmpl)) return fail("cannot create a temp dir");
    a.dir = tmpl;
  }
  const std::string tsv = a.dir + "/criteo.tsv";
  const std::string store_uri = "file://" + fs::absolute(a.dir + "/store").string();
  std::fprintf(stderr, "generating %llu Criteo-format rows in %s\n",
               static_cast<unsigned long long>(a.rows), a.dir.c_str());
  CriteoGenOptions g;
  g.rows = a.rows;
  g.out_path = tsv;
  if (auto r = GenerateCriteo(g); !r.ok()) return fail(r.status().ToString());
  auto store = ObjectStore::Open(store_uri);
  if (!store.ok()) return fail(store.status().ToString());
  IngestOptions io;
  io.format = Format::kCriteo;
  io.inputs = {tsv};
  io.dataset = "bench";
  if (auto r = Ingest(**store, io); !r.ok()) return fail(r.status().ToString());

  nlohmann::json runs = nlohmann::json::array();
  // held%: pipelined pulls the workers held to send with the push (SendSchedule).
  std::printf("%-9s %9s %7s %7s %10s %10s %10s %10s %10s %10s %12s %6s %9s\n", "placement", "minibatch",
              "workers", "rtt_us", "p50_us", "p99_us", "data_us", "pull_us", "compute_us", "push_us",
              "samples/s", "held%", "B/sample");
  if (a.send_schedules.size() > 1) std::printf("(rows in --send-schedule order: %zu per configuration)\n", a.send_schedules.size());
  for (const std::string& placement : a.placements) {
    const bool pin = placement == "same_cpu";
    if (Status s = SetAffinity(pin); !s.ok()) return fail(s.ToString());
    for (uint32_t mb : a.minibatches) {
      for (uint32_t w : a.workers) {
       for (const std::string& schedule : a.send_schedules) {
       for (double rtt : a.rtt_us) {
        TrainOptions o;
        o.emulate_one_way_delay = std::chrono::microseconds(static_cast<int64_t>(rtt / 2));
        o.emulate_bytes_per_second = a.mbps * 1e6;
        o.store = store_uri;
        o.dataset = "bench";
        o.workers = w;
        o.minibatch = mb;
        o.epochs = 1000;  // bounded by the time limit
        o.time_limit_seconds = a.seconds;
        o.send_schedule = schedule;
        o.eval_interval_seconds = 3600;  // no evaluation inside the measured window
        o.backend_config.name = "local";  // placements are of local processes
        if (pin) o.backend_config.settings["worker_prefix"] = "/usr/bin/taskset -c 0";
        auto job = TrainJob::Create(o);
        if (!job.ok()) return fail(job.status().ToString());
        auto r = (*job)->Run();
        if (!r.ok()) return fail(r.status().ToString());
        const IterationTimes& t = r->iteration;
        const uint64_t pipelined = r->pulls_early + r->pulls_with_push;
        const double held = pipelined == 0 ? 0.0
                                           : 100.0 * static_cast<double>(r->pulls_with_push) /
                                                 static_cast<double>(pipelined);
        const double per_sample =
            r->samples > 0 ? static_cast<double>(r->bytes_sent + r->bytes_received) / r->samples : 0;
        std::printf("%-9s %9u %7u %7.0f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %12.0f %6.0f %9.1f\n",
                    placement.c_str(), mb, w, rtt, t.p50_us, t.p99_us, t.data_wait_us, t.pull_us,
                    t.compute_us, t.push_us, r->samples_per_second, held, per_sample);
        std::fflush(stdout);
        runs.push_back({{"placement", placement},
                        {"minibatch", mb},
                        {"workers", w},
                        {"rtt_us", rtt},
                        {"mbps", a.mbps},
                        {"p50_us", t.p50_us},
                        {"p99_us", t.p99_us},
                        {"data_wait_us", t.data_wait_us},
                        {"pull_us", t.pull_us},
                        {"compute_us", t.compute_us},
                        {"push_us", t.push_us},
                        {"iterations", t.iterations},
                        {"samples_per_s", r->samples_per_second},
                        {"pulls_held_percent", held},
                        {"bytes_per_sample", per_sample},
                        {"send_schedule", schedule},
                        {"test_logloss", r->test_logloss}});
       }
       }
      }
    }
  }
  (void)SetAffinity(false);
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << nlohmann::json{{"rows", a.rows}, {"seconds_per_run", a.seconds}, {"runs", runs}}.dump(2)
      << "\n";
  }
  if (own_dir && !a.keep) fs::remove_all(a.dir);
  return 0;
}

}  // namespace

void RegisterBenchTrain(CLI::App& bench, int* exit_code) {
  auto a = std::make_shared<BenchTrainArgs>();
  auto* cmd = bench.add_subcommand("train", "Per-iteration breakdown of training, both placements");
  cmd->add_option("--rows", a->rows, "Rows of the generated Criteo set")->capture_default_str();
  cmd->add_option("--seconds", a->seconds, "Training time per configuration")->capture_default_str();
  cmd->add_option("--minibatch", a->minibatches, "Minibatch sizes")->capture_default_str();
  cmd->add_option("--workers", a->workers, "Worker counts")->capture_default_str();
  cmd->add_option("--placement", a->placements, "same_cpu and/or default")->capture_default_str();
  cmd->add_option("--send-schedule", a->send_schedules,
                  "Pipelined pull schedules to run: auto, early, with_push")
      ->check(CLI::IsMember({"auto", "early", "with_push"}))
      ->capture_default_str();
  cmd->add_option("--rtt-us", a->rtt_us,
                  "Emulated worker-server round trips, us (a TCP shim; 0: direct)")
      ->capture_default_str();
  cmd->add_option("--mbps", a->mbps, "Emulated bandwidth per connection, MB/s (0: unlimited)")
      ->capture_default_str();
  cmd->add_option("--dir", a->dir, "Work directory (default: a new one under /tmp)");
  cmd->add_option("--json-out", a->json_out, "Write every figure as JSON");
  cmd->add_flag("--keep", a->keep, "Keep the generated data");
  cmd->callback([a, exit_code] { *exit_code = BenchTrain(*a); });
}

}  // namespace virga::cli
