// `virga bench lambda-runtime`: the Lambda runtime's own overhead, against a
// Runtime API on loopback (src/lambda/fake_runtime_api.h), with the package
// `virga deploy lambda` builds, unpacked as Lambda unpacks it.
//
// warm: one runtime, started by the package's bootstrap, serves N invocations
//   of an empty job. Per invocation: from the moment `next` hands out the event
//   to the moment its response arrives: the event's parse, fork, the child's
//   run of the payload, its exit and reap, the report and its POST. The payload
//   is "{}", which the worker (RunWorkerPayload, as `virga worker`) rejects at
//   once with exit 2 after the parse every payload gets.
// cold: the bootstrap exec'd with a Lambda-like environment, to its first
//   `next` request: sh, the shipped loader and libraries, static init, the
//   runtime's setup. Each start is a new process with the package's files in
//   the page cache (Lambda's first start of an environment also reads them).
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "lambda/fake_runtime_api.h"
#include "lambda/lambda_event.h"
#include "lambda/lambda_package.h"
#include "tools/commands.h"

namespace virga::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct BenchLambdaOptions {
  int invocations = 300;  // measured warm invocations
  int warmup = 20;        // warm invocations before them, not measured
  int cold_starts = 15;
  std::string binary;     // "" = this executable
  std::string json_path;  // also write the numbers here
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The value below which a fraction q of `v` lies (nearest rank).
double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// Starts <task>/bootstrap with only Lambda's variables; stdout and stderr to `log`.
Result<pid_t> StartBootstrap(const fs::path& task, const std::string& host_port,
                             const fs::path& log) {
  const std::string bootstrap = (task / "bootstrap").string();
  std::vector<std::string> env = {
      "AWS_LAMBDA_RUNTIME_API=" + host_port,  "LAMBDA_TASK_ROOT=" + task.string(),
      "AWS_LAMBDA_FUNCTION_NAME=virga-bench", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1769", "AWS_REGION=us-east-1"};
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(bootstrap.c_str()), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, bootstrap.c_str(), &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Status::IOError(fmt::format("spawn {}: {}", bootstrap, std::strerror(rc)));
  return pid;
}

void Reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

// Cold starts: exec to the first `next`; `next` then answers 500 and the runtime exits.
Result<std::vector<double>> ColdStarts(const fs::path& task, const fs::path& log, int starts) {
  lambda::FakeRuntimeApi api(0ms);
  std::vector<double> ms;
  for (int i = 0; i < starts; ++i) {
    const Clock::time_point t0 = Clock::now();
    VIRGA_ASSIGN_OR_RETURN(pid_t pid, StartBootstrap(task, api.host_port(), log));
    const Clock::time_point arrived = api.WaitForNext(static_cast<size_t>(i) + 1, 10s);
    Reap(pid);
    if (arrived == Clock::time_point{}) {
      return Status::DeadlineExceeded("the runtime never asked for an event (see " + log.string() +
                                      ")");
    }
    ms.push_back(Ms(arrived - t0));
  }
  return ms;
}

struct WarmNumbers {
  std::vector<double> next_to_response_ms;
  std::vector<double> child_ms;  // fork to reap, as the report says
  int errors = 0;
};

Result<WarmNumbers> WarmInvocations(const fs::path& task, const fs::path& log, int warmup,
                                    int invocations) {
  lambda::FakeRuntimeApi api(200ms);  // no more events: `next` answers 500, the runtime exits
  const int64_t deadline = std::chrono::duration_cast<std::chrono::milliseconds>(
                               (std::chrono::system_clock::now() + 600s).time_since_epoch())
                               .count();
  const int total = warmup + invocations;
  for (int i = 0; i < total; ++i) {
    lambda::LambdaEvent e;
    e.function_id = static_cast<uint64_t>(i);
    e.label = "bench";
    e.payload = "{}";
    api.Push({fmt::format("bench-{:05d}", i), lambda::EventToJson(e), deadline, ""});
  }
  VIRGA_ASSIGN_OR_RETURN(pid_t pid, StartBootstrap(task, api.host_port(), log));
  auto posts = api.WaitForPosts(static_cast<size_t>(total), 120s);
  Reap(pid);
  if (posts.size() < static_cast<size_t>(total)) {
    return Status::DeadlineExceeded(
        fmt::format("{} of {} invocations answered (see {})", posts.size(), total, log.string()));
  }
  WarmNumbers n;
  for (const auto& p : posts) {
    if (p.kind != "response") {
      ++n.errors;
      continue;
    }
    if (p.request_id < fmt::format("bench-{:05d}", warmup)) continue;
    n.next_to_response_ms.push_back(Ms(p.at - api.ServedAt(p.request_id)));
    Result<lambda::InvocationReport> r = lambda::ReportFromJson(p.body);
    if (r.ok()) n.child_ms.push_back(r->wall_seconds * 1e3);
  }
  return n;
}

int RunBenchLambda(const BenchLambdaOptions& o) {
  const fs::path root =
      fs::temp_directory_path() / fmt::format("virga-bench-lambda-{}", ::getpid());
  fs::create_directories(root / "task");
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{root};
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga bench lambda-runtime: %s\n", s.ToString().c_str());
    return 1;
  };

  lambda::PackageOptions package;
  package.zip_path = (root / "virga.zip").string();
  package.binary = o.binary;
  Result<lambda::PackageReport> built = lambda::BuildLambdaPackage(package);
  if (!built.ok()) return fail(built.status());
  Status unpacked = lambda::ExtractZip(package.zip_path, (root / "task").string());
  if (!unpacked.ok()) return fail(unpacked);
  const fs::path log = root / "runtime.log";

  Result<WarmNumbers> warm = WarmInvocations(root / "task", log, o.warmup, o.invocations);
  if (!warm.ok()) return fail(warm.status());
  Result<std::vector<double>> cold = ColdStarts(root / "task", log, o.cold_starts);
  if (!cold.ok()) return fail(cold.status());

  const unsigned cpus = std::thread::hardware_concurrency();
  const double warm_p50 = Quantile(warm->next_to_response_ms, 0.5);
  const double warm_p99 = Quantile(warm->next_to_response_ms, 0.99);
  const double child_p50 = Quantile(warm->child_ms, 0.5);
  const double cold_p50 = Quantile(*cold, 0.5);
  std::printf(
      "virga bench lambda-runtime: %u vCPUs, unpinned; package %.1f MiB zipped, %zu files\n", cpus,
      static_cast<double>(built->zipped_bytes) / (1 << 20), built->files.size());
  std::printf(
      "warm: %zu invocations after %d unmeasured: next -> response median %.2f ms, p99 "
      "%.2f ms, max %.2f ms (child fork -> reap median %.2f ms); %d errors\n",
      warm->next_to_response_ms.size(), o.warmup, warm_p50, warm_p99,
      Quantile(warm->next_to_response_ms, 1.0), child_p50, warm->errors);
  std::printf(
      "cold: %zu starts: exec bootstrap -> first next median %.1f ms (min %.1f, max %.1f)\n",
      cold->size(), cold_p50, Quantile(*cold, 0.0), Quantile(*cold, 1.0));
  std::printf("targets: warm median < 5 ms %s, cold median < 50 ms %s\n",
              warm_p50 < 5 ? "met" : "MISSED", cold_p50 < 50 ? "met" : "MISSED");
  if (!o.json_path.empty()) {
    nlohmann::ordered_json j;
    j["cpus"] = cpus;
    j["pinned"] = false;
    j["package_zipped_bytes"] = built->zipped_bytes;
    j["package_unzipped_bytes"] = built->unzipped_bytes;
    j["warm_invocations"] = warm->next_to_response_ms.size();
    j["warm_median_ms"] = warm_p50;
    j["warm_p99_ms"] = warm_p99;
    j["warm_child_median_ms"] = child_p50;
    j["cold_starts"] = cold->size();
    j["cold_median_ms"] = cold_p50;
    j["cold_ms"] = *cold;
    std::ofstream(o.json_path) << j.dump(2) << "\n";
  }
  return warm->errors == 0 ? 0 : 1;
}

}  // namespace

void RegisterBenchLambda(CLI::App& bench, int* exit_code) {
  auto o = std::make_shared<BenchLambdaOptions>();
  auto* cmd = bench.add_subcommand("lambda-runtime",
                                   "Lambda runtime overhead: warm invocation and cold start");
  cmd->add_option("--invocations", o->invocations, "Measured warm invocations")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--warmup", o->warmup, "Unmeasured warm invocations first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cold-starts", o->cold_starts, "Cold starts measured")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000));
  cmd->add_option("--binary", o->binary, "The virga executable to package (default: this one)");
  cmd->add_option("--json", o->json_path, "Also write the numbers as JSON here");
  cmd->callback([o, exit_code] { *exit_code = RunBenchLambda(*o); });
}

}  // namespace virga::cli
