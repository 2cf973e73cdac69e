// `virga train`: run a training job with worker functions and print its result.
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/spdlog.h>

#include "common/atomic_file.h"
#include "src/channel/channel_job.h"
#include "tools/backend_flags.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/token.h"
#include "tools/train_line.h"
#include "scheduler/job_internal.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/model_file.h"
#include "virga/ps_client.h"
#include "virga/train.h"

namespace virga::cli {
namespace {

struct TrainArgs {
  TrainOptions o;
  std::string optimizer = OptimizerName(TrainOptions::DefaultOptimizer().kind);
  std::string schedule = "constant";
  float learning_rate = 0;  // 0 = the optimizer default
  std::string servers;
  std::string token_file;
  double function_timeout = 900;
  double start_delay = 0;
  std::string json_out;
  std::string model_out;
  BackendFlags backend;
  // Optimizer flags given on the command line (the rest keep the model's defaults).
  CLI::Option* optimizer_flag = nullptr;
  CLI::Option* schedule_flag = nullptr;
  CLI::Option* l1_flag = nullptr;
  CLI::Option* l2_flag = nullptr;
  CLI::Option* clip_flag = nullptr;
  CLI::Option* ftrl_beta_flag = nullptr;
  bool quiet = false;
  bool verbose = false;
  // One step (--input): text ingested into temporary datasets, then trained on.
  std::vector<std::string> inputs, test_inputs;
  std::string format = "libsvm";
  std::string task = "any";
  int hash_bits = 20;
  bool keep_dataset = false;
  bool progressive = false;  // VW-style table of the progressive loss instead of the live line
};

std::atomic<TrainJob*> g_job{nullptr};
std::atomic<channel::ChannelJob*> g_channel_job{nullptr};
std::atomic<int> g_signal{0};  // the first stop signal received; 0 = none
void OnSignal(int sig) {
  // A second signal while the job stops (its workers told, then killed): leave at once.
  if (g_signal.exchange(sig) != 0) std::_Exit(128 + sig);
  if (TrainJob* j = g_job.load()) j->Kill();
  if (channel::ChannelJob* j = g_channel_job.load()) j->Kill();
}
void SetSignalTarget(TrainJob* j) { g_job = j; }
void SetSignalTarget(channel::ChannelJob* j) { g_channel_job = j; }

void PrintProgress(const TrainProgress& p, bool tty) {
  static double last_print = -10;
  if (!tty && p.state == "running" && p.seconds - last_print < 5) return;
  last_print = p.seconds;
  // "\r" + the line + blanks over the rest of a longer previous line: 80 columns at most.
  const std::string line = TrainLine(p);
  std::fprintf(stderr, "%s%-*s%s", tty ? "\r" : "", tty ? static_cast<int>(kTrainLineWidth) : 0,
               line.c_str(), tty ? "" : "\n");
  std::fflush(stderr);
}

template <typename Job>
int RunJob(TrainArgs& a);

// VW-style progress: a row each time the rows trained on have doubled (and at the end), with
// the progressive loss (each row's loss before its own update), its value since the last row,
// and the test metric.
class ProgressiveTable {
 public:
  void Print(const TrainProgress& p) {
    const bool end = p.state != "running";
    if (!header_) {
      std::fprintf(stderr, "%-10s %-10s %12s %12s %9s %8s\n", "average", "since", "example",
                   ("test " + p.metric).substr(0, 12).c_str(), "epoch", "elapsed");
      std::fprintf(stderr, "%-10s %-10s %12s\n", "loss", "last", "counter");
      header_ = true;
    }
    if (p.train_rows == 0 || std::isnan(p.train_loss)) return;
    if (p.train_rows < next_ && !(end && p.train_rows > last_rows_)) return;
    const double sum = p.train_loss * static_cast<double>(p.train_rows);
    const double since = (sum - last_sum_) / static_cast<double>(p.train_rows - last_rows_);
    char epoch[32];
    std::snprintf(epoch, sizeof epoch, "%u/%u", p.epoch, p.epochs);
    std::fprintf(stderr, "%-10.6f %-10.6f %12llu %12.4f %9s %7.1fs\n", p.train_loss, since,
                 static_cast<unsigned long long>(p.train_rows), p.test_metric, epoch, p.seconds);
    std::fflush(stderr);
    last_sum_ = sum;
    last_rows_ = p.train_rows;
    while (next_ <= p.train_rows) next_ *= 2;
  }

 private:
  bool header_ = false;
  uint64_t next_ = 1;
  uint64_t last_rows_ = 0;
  double last_sum_ = 0;
};

// --input: ingests the text into a temporary dataset (and --test-input into another) and points
// the options at them; their names in *made (removed after the job unless --keep-dataset).
Status IngestInputs(TrainArgs& a, std::vector<std::string>* made) {
  if (!a.o.dataset.empty())
    return Status::InvalidArgument("give --dataset (ingested) or --input (text), not both");
  VIRGA_ASSIGN_OR_RETURN(Format format, ParseFormatName(a.format));
  VIRGA_ASSIGN_OR_RETURN(auto store, ObjectStore::Open(a.o.store));
  const std::string base = "tmp-train-" + sched::NewJobId().substr(4);
  auto ingest = [&](const std::vector<std::string>& inputs, const std::string& name,
                    double test_fraction) -> Status {
    IngestOptions io;
    io.format = format;
    io.inputs = inputs;
    io.dataset = name;
    io.test_fraction = test_fraction;
    io.parse.hash_bits = a.hash_bits;
    VIRGA_ASSIGN_OR_RETURN(io.parse.task, ParseLabelTaskName(a.task));
    ProgressLine line("train: ingest", 0);
    io.on_progress = [&line](const IngestProgress& p) { line.Update(p.rows, p.file_bytes); };
    auto report = Ingest(*store, io);
    line.Finish();
    if (!report.ok()) return report.status();
    made->push_back(name);
    if (!a.quiet) std::fprintf(stderr, "virga train: %s\n", report->Summary().c_str());
    return Status::OK();
  };
  VIRGA_RETURN_IF_ERROR(ingest(a.inputs, base, a.test_inputs.empty() ? 0.1 : 0.0));
  a.o.dataset = base;
  if (!a.test_inputs.empty()) {
    VIRGA_RETURN_IF_ERROR(ingest(a.test_inputs, base + "-test", 1.0));
    a.o.test_dataset = base + "-test";
  }
  return Status::OK();
}

// The exit code of a finished job (docs/training.md, "Exit codes"): 0 when it ran to one of its
// stop rules, 1 when it failed or diverged, 128 + N when signal N stopped it, 3 when it was
// killed on request (`virga kill`, the dashboard's kill button); a killed job says so.
int ExitCode(const TrainResult& r) {
  if (r.state == "killed") {
    const int sig = g_signal.load();
    const char* name = sig == SIGINT ? "SIGINT (Ctrl-C)" : sig == SIGTERM ? "SIGTERM"
                       : sig == SIGHUP ? "SIGHUP (terminal closed)" : "";
    std::fprintf(stderr,
                 "virga train: job %s was killed %s%s after %.1f s, %u/%u epochs%s%s\n",
                 r.job_id.c_str(), sig != 0 ? "by " : "on request (virga kill, the dashboard)",
                 name, r.train_seconds, r.epochs, r.epochs_requested,
                 r.model_file.empty() ? "" : "; its unfinished model is in ", r.model_file.c_str());
    return sig != 0 ? 128 + sig : 3;
  }
  if (r.state == "diverged") {
    std::fprintf(stderr, "virga train: job %s diverged (test %s grew); try a smaller "
                 "--learning-rate\n", r.job_id.c_str(), r.metric.c_str());
    return 1;
  }
  return r.state.rfind("failed", 0) == 0 ? 1 : 0;
}

int RunTrain(TrainArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga train: %s\n", s.ToString().c_str());
    return 1;
  };
  if (!a.verbose) spdlog::set_level(spdlog::level::warn);  // the embedded server's connection logs
  auto backend = a.backend.Config();
  if (!backend.ok()) return fail(backend.status());
  a.o.backend_config = *backend;
  auto model = ParseModelName(a.o.model);
  if (!model.ok()) return fail(model.status());
  // The model's optimizer defaults (ModelInfo), then the flags given.
  const ModelInfo& info = ModelInfoOf(*model);
  const OptimizerConfig flags = a.o.optimizer;
  a.o.optimizer = info.own_optimizer ? info.optimizer : TrainOptions::DefaultOptimizer();
  if (!info.own_optimizer || a.optimizer_flag->count() > 0) {
    auto kind = ParseOptimizerName(a.optimizer);
    if (!kind.ok()) return fail(kind.status());
    a.o.optimizer.kind = *kind;
  }
  // 0 keeps the default; anything else, negative included, goes to the options' checks
  // (the same rule and message as the Python API).
  if (a.learning_rate != 0) a.o.optimizer.learning_rate = a.learning_rate;
  if (a.l1_flag->count() > 0) a.o.optimizer.l1 = flags.l1;
  if (a.l2_flag->count() > 0) a.o.optimizer.l2 = flags.l2;
  if (a.clip_flag->count() > 0) a.o.optimizer.clip = flags.clip;
  if (a.ftrl_beta_flag->count() > 0) a.o.optimizer.ftrl_beta = flags.ftrl_beta;
  auto schedule = ParseLrScheduleName(a.schedule);
  if (!schedule.ok()) return fail(schedule.status());
  a.o.optimizer.schedule = *schedule;
  a.o.function_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.function_timeout * 1000));
  a.o.max_start_delay = std::chrono::milliseconds(static_cast<int64_t>(a.start_delay * 1000));
  if (!a.servers.empty()) {
    auto list = ParseServerList(a.servers);
    if (!list.ok()) return fail(list.status());
    a.o.servers = *list;
    auto token = LoadToken(a.token_file, false);
    if (!token.ok()) return fail(token.status());
    a.o.token = *token;
  }
  if (!a.model_out.empty()) a.o.keep_table = true;
  auto storage = channel::IsStorageChannel(a.o);
  if (!storage.ok()) return fail(storage.status());
  std::vector<std::string> made;  // temporary datasets of --input
  if (!a.inputs.empty() || !a.test_inputs.empty()) {
    if (a.inputs.empty()) return fail(Status::InvalidArgument("--test-input needs --input"));
    a.progressive = true;
    Status s = IngestInputs(a, &made);
    if (s.ok()) {
      const int code = *storage ? RunJob<channel::ChannelJob>(a) : RunJob<TrainJob>(a);
      if (!a.keep_dataset) {
        if (auto store = ObjectStore::Open(a.o.store); store.ok())
          for (const std::string& d : made) (void)DeleteDataset(**store, d);
      } else if (!a.quiet) {
        for (const std::string& d : made)
          std::fprintf(stderr, "virga train: kept dataset %s (virga datasets rm %s)\n", d.c_str(),
                       d.c_str());
      }
      return code;
    }
    if (auto store = ObjectStore::Open(a.o.store); store.ok())
      for (const std::string& d : made) (void)DeleteDataset(**store, d);
    return fail(s);
  }
  if (*storage) return RunJob<channel::ChannelJob>(a);
  return RunJob<TrainJob>(a);
}

// Runs a TrainJob or a channel::ChannelJob (same interface) to its end.
template <typename Job>
int RunJob(TrainArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga train: %s\n", s.ToString().c_str());
    return 1;
  };
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnSignal);  // a closed terminal: stop the job cleanly, workers included
  auto job = Job::Create(a.o);
  if (!job.ok()) return fail(job.status());
  SetSignalTarget(job->get());
  if (const int sig = g_signal.load(); sig != 0) {  // while the job was being set up
    std::fprintf(stderr, "virga train: interrupted by signal %d before job %s started\n", sig,
                 (*job)->options().job_id.c_str());
    return 128 + sig;
  }
  const bool tty = isatty(STDERR_FILENO) && !a.quiet;
  const TrainOptions& eff = (*job)->options();
  if (!a.quiet) {
    std::fprintf(stderr,
                 "virga train: job %s, model %s, %u workers, %s lr %g l2 %g, minibatch %u, %u epochs, "
                 "%s\n",
                 eff.job_id.c_str(), eff.model.c_str(), eff.workers, OptimizerName(eff.optimizer.kind),
                 eff.optimizer.learning_rate, eff.optimizer.l2, eff.minibatch, eff.epochs,
                 eff.channel != "ps"           ? ("channel " + eff.channel + " (no server)").c_str()
                 : a.servers.empty() ? "servers embedded"
                                     : ("servers " + a.servers).c_str());
  }
  ProgressiveTable table;
  auto result = (*job)->Run([&](const TrainProgress& p) {
    if (a.quiet) return;
    if (a.progressive) {
      table.Print(p);
    } else {
      PrintProgress(p, tty);
    }
  });
  if (tty && !a.progressive && !a.quiet) std::fputc('\n', stderr);
  if (!result.ok()) {
    SetSignalTarget(static_cast<Job*>(nullptr));
    return fail(result.status());
  }
  if (!a.model_out.empty()) {
    if (Status s = (*job)->SaveModel(a.model_out); !s.ok()) return fail(s);
  }
  SetSignalTarget(static_cast<Job*>(nullptr));
  if (!a.quiet) {
    std::fprintf(stderr, "virga train: result JSON in %s at %s\n", eff.store.c_str(),
                 JobResultKey(eff.job_id).c_str());
    if (!result->model_file.empty())
      std::fprintf(stderr, "virga train: model in %s (virga predict --job %s)\n",
                   result->model_file.c_str(), eff.job_id.c_str());
  }
  if (!result->model_error.empty() && result->model_file.empty() &&
      result->state.rfind("failed", 0) != 0)
    std::fprintf(stderr, "virga train: warning: the model was not kept in the store: %s\n",
                 result->model_error.c_str());
  if (!a.json_out.empty()) {  // a local copy
    if (Status s = WriteFileAtomically(a.json_out, TrainResultToJson(*result) + "\n"); !s.ok())
      return fail(s);
  }
  const TrainResult& r = *result;
  if (r.checkpoints_failed > 0) {
    std::fprintf(stderr,
                 "virga train: warning: %llu checkpoint(s) of the servers failed, the last with: "
                 "%s\n",
                 static_cast<unsigned long long>(r.checkpoints_failed), r.checkpoint_error.c_str());
  }
  std::string metrics;  // "test logloss 0.4512  auc 0.7700  accuracy 0.7900"
  for (const char* m : TaskMetrics(ModelInfoOf(*ParseModelName(r.model)).task)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.4f", metrics.empty() ? "test " : "  ", m,
                  TestMetric(r, m));
    metrics += buf;
  }
  std::printf(
      "%s: %s  %s  |  %.2f s, %.0f samples/s, %u/%u epochs, "
      "%llu updates  |  workers %llu launched, %llu failed  |  iteration p50 %.1f us p99 %.1f us "
      "(data %.1f, pull %.1f, compute %.1f, push %.1f)  |  cost $%.6f\n",
      r.job_id.c_str(), r.state.c_str(), metrics.c_str(), r.train_seconds,
      r.samples_per_second, r.epochs, r.epochs_requested, static_cast<unsigned long long>(r.updates),
      static_cast<unsigned long long>(r.workers_launched),
      static_cast<unsigned long long>(r.workers_failed), r.iteration.p50_us, r.iteration.p99_us,
      r.iteration.data_wait_us, r.iteration.pull_us, r.iteration.compute_us, r.iteration.push_us,
      r.cost_total_usd);
  return ExitCode(r);
}

}  // namespace

std::string ModelHelp() {
  std::string help;
  for (const ModelInfo* m : Models()) {
    help += (help.empty() ? "" : " | ") + std::string(m->name) + " (" + m->summary + ")";
  }
  return help + "; docs/models.md";
}

void RegisterTrain(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  TrainOptions& o = args->o;
  auto* cmd = app.add_subcommand("train", "Train a model with worker functions");
  o.store = DefaultStoreUri();
  cmd->add_option("--store", o.store,
                  "Object store URI: the datasets, and the job's result (docs/object-layout.md)")
      ->capture_default_str();
  cmd->add_option("--dataset", o.dataset,
                  "Training dataset (its train split); required unless --resume or --input");
  cmd->add_option("--input", args->inputs,
                  "One step: ingest these text files (--format) into a temporary dataset, train "
                  "on it printing the progressive loss (VW-style), then remove it")
      ->expected(1, -1);
  cmd->add_option("--test-input", args->test_inputs,
                  "With --input: text files to evaluate on (default: 10% of --input)")
      ->expected(1, -1);
  cmd->add_option("--format", args->format, "With --input: libsvm | criteo | csv | ratings")
      ->check(CLI::IsMember({"libsvm", "criteo", "csv", "ratings"}))
      ->capture_default_str();
  cmd->add_option("--hash-bits", args->hash_bits, "With --input, criteo: 2^B hashed feature slots")
      ->capture_default_str();
  cmd->add_option("--task", args->task,
                  "With --input: the labels' task, checked per line (virga ingest --task)")
      ->check(CLI::IsMember({"any", "binary", "regression", "multiclass"}))
      ->capture_default_str();
  cmd->add_flag("--keep-dataset", args->keep_dataset,
                "With --input: keep the temporary datasets (their names are printed)");
  cmd->add_flag("--progressive", args->progressive,
                "Print the VW-style table of the progressive loss instead of the live line");
  cmd->add_option("--test", o.test_dataset,
                  "Evaluation dataset (its test split, else its train split); default: the test "
                  "split of --dataset");
  cmd->add_option("--model", o.model, ModelHelp())->capture_default_str();
  cmd->add_option("--rank", o.rank, "mf, fm: factors per key; 0 = the model's default")
      ->capture_default_str();
  cmd->add_option("--classes", o.classes,
                  "softmax: number of classes; 0 = the dataset's largest label + 1")
      ->capture_default_str();
  cmd->add_option("--workers", o.workers,
                  "Worker functions kept alive; 0 = auto (local: the CPUs, at most 4; lambda: 4)")
      ->capture_default_str();
  args->optimizer_flag =
      cmd->add_option("--optimizer", args->optimizer,
                      "sgd | momentum | nesterov | adagrad | adam | ftrl (default: the model's; "
                      "ftrl for lr and svm)")
          ->capture_default_str();
  cmd->add_option("--learning-rate", args->learning_rate,
                  "Learning rate (FTRL: alpha); default: the model's (lr, svm: 0.05)");
  args->schedule_flag =
      cmd->add_option("--lr-schedule", args->schedule, "constant | inverse_sqrt | exponential | step")
          ->capture_default_str();
  args->l1_flag = cmd->add_option("--l1", o.optimizer.l1, "L1 strength (default: the model's)");
  args->l2_flag = cmd->add_option("--l2", o.optimizer.l2, "L2 strength (default: the model's)");
  args->clip_flag =
      cmd->add_option("--clip", o.optimizer.clip, "Clip gradient coordinates to [-c, c]; 0 = off");
  args->ftrl_beta_flag = cmd->add_option(
      "--ftrl-beta", o.optimizer.ftrl_beta,
      "FTRL: beta, the per-coordinate rate's smoothing (alpha / (beta + sqrt(n))); "
      "default: the model's (lr, svm: 0.15)");
  cmd->add_option("--minibatch", o.minibatch, "Rows per step; 0 = auto")->capture_default_str();
  cmd->add_option("--epochs", o.epochs,
                  "Passes over the data; 0 = auto (5, or enough for 30,000 samples on a small "
                  "data set, at most 100)")
      ->capture_default_str();
  cmd->add_option("--staleness", o.staleness, "-1 asynchronous; S >= 0 bounded staleness")
      ->capture_default_str();
  cmd->add_option("--send-schedule", o.send_schedule,
                  "When pipelined pulls are sent: auto (measured), early, with_push")
      ->check(CLI::IsMember({"auto", "early", "with_push"}))
      ->capture_default_str();
  cmd->add_option("--local-steps", o.local_steps,
                  "Minibatches a worker trains on its own copy of a round's rows between one pull "
                  "and one push (docs/training.md); 1: a pull and a push per minibatch; 0: auto (" +
                      std::to_string(kLocalStepsBudget) + " / workers, within 16.." +
                      std::to_string(kDefaultLocalSteps) + ", when asynchronous)")
      ->capture_default_str();
  cmd->add_option("--function-timeout", args->function_timeout, "Function lifetime, seconds")
      ->capture_default_str();
  cmd->add_option("--function-memory", o.function_memory_mb, "Function memory cap, MB")
      ->capture_default_str();
  cmd->add_option("--start-delay", args->start_delay, "Random cold-start delay up to this, seconds");
  cmd->add_option("--target-loss", o.target_loss,
                  "Stop once the test metric (logloss; mf: rmse) <= this");
  cmd->add_option("--time-limit", o.time_limit_seconds, "Stop after this many seconds");
  cmd->add_option("--eval-interval", o.eval_interval_seconds, "Seconds between evaluations")
      ->capture_default_str();
  cmd->add_option("--rows-per-item", o.rows_per_item, "Rows per work item; 0 = auto");
  cmd->add_option("--lease", o.lease_ms, "Work item lease, ms")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Shuffle and init seed")->capture_default_str();
  cmd->add_option("--job-id", o.job_id, "Job id (default: generated)");
  cmd->add_option("--resume", o.job_id,
                  "Continue job JOB (interrupted: driver killed, machine rebooted) from its last "
                  "checkpoint in --store, with its own dataset, epochs, workers, ...")
      ->each([args](const std::string&) { args->o.resume = true; });
  cmd->add_flag("--server-process", o.server_process,
               "Run the embedded server as a child process, restarted from its last checkpoint "
               "when it dies");
  cmd->add_option("--server-fault-grace", o.server_fault_grace_seconds,
                  "Seconds to wait for unreachable servers to come back before failing")
      ->capture_default_str();
  cmd->add_option("--checkpoint-interval", o.checkpoint_interval_seconds,
                  "Embedded server: checkpoint to the store every this many seconds (0: never)")
      ->capture_default_str();
  cmd->add_option("--servers", args->servers, "host:port[,host:port] (default: embedded server)");
  cmd->add_option("--token-file", args->token_file, "Servers' token file");
  cmd->add_option("--tls-cert", o.tls_cert_file,
                  "Embedded server: serve TLS with this certificate (PEM; with --tls-key)");
  cmd->add_option("--tls-key", o.tls_key_file, "Embedded server: its TLS private key (PEM)");
  cmd->add_option("--tls-ca", o.tls_ca_file,
                  "CA certificate(s) (PEM) the servers' TLS certificates chain to "
                  "(default with --tls-cert: that certificate)");
  cmd->add_option("--server-bind", o.server_bind,
                  "Embedded server: the address it listens on (0.0.0.0: every interface)")
      ->capture_default_str();
  cmd->add_option_function<double>(
         "--emulate-rtt-us",
         [&o](double us) {
           o.emulate_one_way_delay = std::chrono::microseconds(static_cast<int64_t>(us / 2));
         },
         "Benchmarks: an emulated round trip between workers and servers, us (a TCP shim)")
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option_function<double>(
         "--emulate-mbps", [&o](double mbps) { o.emulate_bytes_per_second = mbps * 1e6; },
         "Benchmarks: an emulated bandwidth per worker connection, MB/s")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--server-advertise", o.server_advertise,
                  "Embedded server: HOST[:PORT] the functions connect to (default: the bind "
                  "address; needed when functions run elsewhere, e.g. on Lambda)");
  cmd->add_option("--json-out", args->json_out,
                  "Also write the result JSON to this local file (it is always written to the "
                  "store, at jobs/<job-id>/result.json)");
  cmd->add_option("--model-out", args->model_out,
                  "Write the trained model here: a local path, or a store URI such as "
                  "s3://bucket/models/m.vmdl or file:///dir/m.vmdl (docs/model-file.md)");
  cmd->add_option("--channel", o.channel,
                  "ps (parameter server) | store (object store, no server) | redis (redis-server, "
                  "no server); docs/channel.md")
      ->capture_default_str();
  cmd->add_option("--channel-uri", o.channel_uri, "--channel redis: redis://host:port");
  cmd->add_flag("--quiet", args->quiet, "No progress output");
  cmd->add_flag("--verbose", args->verbose, "Log the embedded server's connections");
  args->backend.Add(cmd);
  cmd->callback([args, exit_code] { *exit_code = RunTrain(*args); });
}

}  // namespace virga::cli
