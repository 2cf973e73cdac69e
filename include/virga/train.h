// Training jobs: the scheduler side of the client backend.
//
// A TrainJob creates the model table on the parameter servers, enqueues every
// epoch's work items (shuffled slices of the dataset's partitions) on the
// job's queue, keeps `workers` worker functions alive on a compute backend
// (respawning them when they exit, crash, are killed or reach their
// lifetime), evaluates the model on the test split while the workers run, and
// stops when every item of every epoch has been processed, a target test loss
// is reached, a time limit passes, or Kill() is called.
//
// With no servers given, the job runs an embedded parameter server in this
// process (loopback, a random token); with no backend given, the one
// `backend_config` names (by default local processes running this program).
//
// Everything the job produces goes to its object store (`store`): the
// datasets it reads are there, and at its end it writes its result JSON to
// jobs/<job-id>/result.json (JobResultKey; docs/object-layout.md). Only the
// registry entry (registry_dir) is local: it is this machine's process table.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "virga/backend.h"
#include "virga/optimizer.h"
#include "virga/status.h"
#include "virga/worker.h"

namespace virga {

// Local steps per round when TrainOptions::local_steps is 0 and the job is
// asynchronous: kLocalStepsBudget / workers, within [16, kDefaultLocalSteps]
// (the runs that chose them: docs/training.md, "Local steps").
inline constexpr uint32_t kDefaultLocalSteps = 128;
inline constexpr uint32_t kLocalStepsBudget = 256;

struct TrainOptions {
  std::string store = "file://./virga-store";  // object store URI holding the datasets
  std::string dataset;                // training data: its train split
  std::string test_dataset;           // evaluation data: its test split, or its train split if it
                                      // has none; empty: the test split of `dataset`
  std::string model = "lr";           // a registered model (ModelNameList(), docs/models.md)
  uint32_t rank = 0;                  // mf, fm: factors per key; 0 = the model's default
  uint32_t classes = 0;               // softmax: classes; 0 = the dataset's largest label + 1
  uint32_t workers = 0;               // functions kept alive at once; 0 = auto (the backend's
                                      // DefaultWorkers: local min(CPUs, 4), lambda 4)
  OptimizerConfig optimizer = DefaultOptimizer();
  uint32_t minibatch = 0;             // rows per step; 0 = auto (see docs/training.md)
  uint32_t epochs = 0;                // passes over the data; 0 = auto
  int32_t staleness = -1;             // -1 asynchronous; s >= 0 bounded staleness (0 = synchronous)
  std::string send_schedule = "auto"; // pipelined pulls: auto (measured) | early | with_push
  // Minibatches a worker trains on its own replica of a round's rows between
  // one pull and one push (docs/training.md, "Local steps"); 1: a pull and a
  // push per minibatch; 0 = auto (kLocalStepsBudget / workers in [16, 128] when
  // asynchronous, else 1).
  uint32_t local_steps = 0;
  std::chrono::milliseconds function_timeout{900'000};  // function lifetime
  uint64_t function_memory_mb = 3072; // function memory cap
  std::chrono::milliseconds max_start_delay{0};  // random cold-start delay per function
  double target_loss = 0;             // > 0: stop once the test metric (logloss, rmse) <= this
  double time_limit_seconds = 0;      // > 0: stop after this long
  double eval_interval_seconds = 1.0; // evaluation period while training
  uint32_t rows_per_item = 0;         // rows per work item; 0 = auto (>= 8 items per worker per epoch)
  uint32_t lease_ms = 3'000;          // work item lease, renewed by its worker every third of it;
                                      // a killed worker's item returns after at most this
  uint64_t seed = 1;                  // item shuffling and table init
  std::string job_id;                 // empty: generated ("job-<time>-<random>")
  std::vector<std::string> servers;   // empty: embedded server
  // The embedded server listens on this address (port chosen by the system)...
  std::string server_bind = "127.0.0.1";
  // ...and functions are told to reach it at this "host" or "host:port" (a port
  // of 0 or none: the one it got). Empty: server_bind. A server bound to
  // 0.0.0.0 or :: must be advertised (cloud functions cannot reach "0.0.0.0").
  std::string server_advertise;
  std::string token;                  // servers' secret (required with `servers`)
  // TLS between functions and servers (docs/wire-format.md, "TLS"). The embedded server (or
  // server process) serves it with this certificate (chain) and private key, PEM files; the
  // key never leaves this machine. Both empty: plain TCP.
  std::string tls_cert_file, tls_key_file;
  // The CA certificate(s), a PEM file, the servers' certificates must chain to: the driver
  // and every function verify the servers against it, and their host name or IP address.
  // Empty with tls_cert_file: that certificate itself (self-signed). Functions get its text
  // in their payload.
  std::string tls_ca_file;
  // The embedded server checkpoints its tables, KV and queues (one cut) to `store`, under
  // checkpoints/<job-id>/, this often; 0: never. Failures show in the result
  // (checkpoints_failed), the registry and the dashboard, not only in a log.
  double checkpoint_interval_seconds = 0;
  // An emulated network between the workers and the servers, for benchmarks
  // and tests that want a cloud function's link on one machine: the driver
  // puts a NetShim (src/net/shim.h: a TCP proxy adding this one-way delay in
  // each direction and a per-connection bandwidth cap) in front of each
  // server and gives the workers its address; the driver itself talks to the
  // servers directly. 0 and 0: none.
  std::chrono::microseconds emulate_one_way_delay{0};
  double emulate_bytes_per_second = 0;
  // Run the embedded server as a child process (`virga server` of server_binary) instead of
  // in this process; when it dies the driver starts a replacement that restores the latest
  // checkpoint (every checkpoint_interval_seconds, 5 s if 0), and the workers reconnect.
  bool server_process = false;
  std::string server_binary;          // empty: $VIRGA_BINARY, else this executable
  // With `servers` (or server_process): how long the job waits for unreachable servers to
  // come back (restarted with --restore) before it fails.
  double server_fault_grace_seconds = 60;
  // Continue job `job_id`, interrupted (driver killed, machine rebooted), from its last
  // checkpoint in `store`: its plan-defining options come from JobOptionsKey (those given
  // here are ignored), its server from checkpoints/<job-id>/. Needs a job that checkpointed
  // (checkpoint_interval_seconds > 0 or server_process) with an embedded server.
  bool resume = false;
  // The compute backend running the workers, by name, with its settings (include/virga/backend.h;
  // e.g. local's worker_binary). Empty name: $VIRGA_BACKEND, else "local". Ignored with `backend`.
  BackendConfig backend_config;
  std::shared_ptr<ComputeBackend> backend;  // null: the job makes one from backend_config
  bool keep_table = false;            // leave the model table on the servers after the job
  // Where the job registers itself so `virga jobs` / `virga kill JOB` (any process) see it:
  // <dir>/<job>/status.json, refreshed at every evaluation; a file <dir>/<job>/kill stops it.
  // Empty: $VIRGA_HOME/jobs, else ~/.virga/jobs. "-": not registered.
  std::string registry_dir;
  // Stop a run whose test metric is NaN or above 1.5 x its first evaluation's
  // (state "diverged"), after at least 2 evaluations.
  bool stop_on_divergence = true;
  // How workers exchange the model and gradients (docs/channel.md):
  //   "ps"     the parameter servers (`servers`, or the embedded one)
  //   "store"  the object store `store` itself: no server; stateless functions in
  //            synchronous rounds, each reducing 1/workers of the gradient (ScatterReduce)
  //   "redis"  the same rounds over a redis-server at `channel_uri`
  // The storage channels run through RunChannelJob (src/channel/channel_job.h), not TrainJob.
  std::string channel = "ps";
  std::string channel_uri;            // channel "redis": "redis://host:port"

  static OptimizerConfig DefaultOptimizer();
};

struct HistoryPoint {
  double seconds = 0;        // since the job started
  uint64_t updates = 0;      // table version (applied pushes)
  uint64_t samples = 0;      // rows of processed work items
  // The model's primary metric (TrainResult::metric): what jobs minimise.
  double test_metric = 0;
  // Each metric of the model's task; the others are NaN.
  double test_logloss = 0, test_auc = 0, test_accuracy = 0;
  double test_rmse = 0, test_mae = 0;
};

struct FunctionRecord {
  uint64_t id = 0;
  FunctionState state = FunctionState::kStarting;
  std::string reason;        // backend's end reason, or the worker's end_reason
  double wall_seconds = 0, gb_seconds = 0;
  uint64_t peak_rss_bytes = 0;
  uint64_t samples = 0;
};

struct TrainResult {
  std::string job_id;
  std::string backend;                 // the compute backend's name ("local")
  std::string state;                   // "done" | "target_reached" | "time_limit" | "killed" | "failed: ..."
  std::string model;                   // its name ("lr", "mf", ...)
  uint32_t width = 1;                  // floats per key of its table
  // The primary metric's name, PrimaryMetric(task): "logloss" or "rmse"
  // (lower is better), and its value; the JSON names it test_<metric>.
  std::string metric = "logloss";
  double test_metric = 0;
  // Each metric of the model's task (TaskMetrics); the others are NaN.
  double test_logloss = 0, test_auc = 0, test_accuracy = 0;
  double test_rmse = 0, test_mae = 0;
  double train_seconds = 0;
  uint64_t samples = 0, updates = 0;
  double samples_per_second = 0;
  uint32_t epochs = 0;                 // epochs fully processed
  uint32_t epochs_requested = 0;
  uint32_t minibatch = 0;
  uint32_t local_steps = 1;
  uint64_t workers_launched = 0, workers_failed = 0, workers_timed_out = 0, workers_killed = 0;
  uint64_t workers_hung = 0;           // of the killed: no heartbeat (e.g. SIGSTOPped), replaced
  uint64_t server_restarts = 0;        // server processes restarted from a checkpoint
  uint32_t items_per_epoch = 0;
  uint32_t partitions = 0;
  std::vector<uint32_t> partitions_processed_per_epoch;  // partitions whose every row was processed
  std::vector<uint32_t> items_processed_per_epoch;       // items processed at least once
  uint64_t items_reprocessed = 0;      // extra processings (at-least-once after faults)
  uint64_t duplicate_deliveries = 0;   // second deliveries of a function that exited untrained
  IterationTimes iteration;            // merged over every worker
  uint64_t pulls_early = 0, pulls_with_push = 0;  // workers' send schedules (WorkerResult)
  // Workers' traffic with the servers (their training connections), summed;
  // the result JSON also gives it per sample and per iteration.
  uint64_t bytes_sent = 0, bytes_received = 0;
  std::vector<HistoryPoint> history;
  std::vector<FunctionRecord> functions;
  double function_gb_seconds = 0;
  double cost_functions_usd = 0, cost_server_usd = 0, cost_total_usd = 0;
  OptimizerConfig optimizer;
  // The servers' checkpoints during the job (all servers; "checkpoints" in their stats),
  // and the newest failure's message ("" when none failed; also in `virga ping`, the
  // registry's "servers", the dashboard's checkpoint_error and the server's log).
  uint64_t checkpoints_written = 0, checkpoints_failed = 0;
  std::string checkpoint_error;
  // The model as the job left it, kept in its store at JobModelKey (a model
  // file, docs/model-file.md) so that `virga export` / `virga predict` work
  // after the job and its servers are gone: its URI, "" if it could not be
  // written or the job failed (model_error says why).
  std::string model_file, model_error;
};

std::string TrainResultToJson(const TrainResult& result);
// The value of metric `name` ("logloss", "auc", "accuracy", "rmse", "mae"; the
// names of include/virga/metrics.h) in a history point or a result; their
// test_metric for any other name.
double TestMetric(const HistoryPoint& point, std::string_view name);
double TestMetric(const TrainResult& result, std::string_view name);

// Keys of what a job leaves in its object store (docs/object-layout.md).
// REQUIRES: a valid job id ([A-Za-z0-9._-], 1..100 bytes).
inline std::string JobResultKey(std::string_view job_id) {
  return "jobs/" + std::string(job_id) + "/result.json";  // TrainResultToJson, at the job's end
}
// The options that define a checkpointed job's plan and model (dataset, test dataset, model,
// workers, epochs, minibatch, rows per item, seed, ...), written at its start so that
// TrainOptions::resume can continue it.
inline std::string JobOptionsKey(std::string_view job_id) {
  return "jobs/" + std::string(job_id) + "/options.json";
}
// The job's model file (docs/model-file.md), written at the job's end whatever its state
// (TrainResult::model_file).
inline std::string JobModelKey(std::string_view job_id) {
  return "jobs/" + std::string(job_id) + "/model.vmdl";
}
// A search's summary (`virga search`, the Python GridSearch/RandomSearch).
inline std::string SearchResultKey(std::string_view search_id) {
  return "searches/" + std::string(search_id) + "/result.json";
}

// Live view of a running job (for progress lines, the Python API, dashboards).
struct TrainProgress {
  double seconds = 0;
  uint32_t epoch = 0, epochs = 0;      // epochs fully processed / requested
  uint64_t samples = 0, updates = 0;
  double samples_per_second = 0;
  std::string metric = "logloss";      // the primary metric's name (TrainResult::metric)
  double test_metric = 0, best_metric = 0;
  double test_logloss = 0, best_logloss = 0;  // binary and multiclass models; else NaN
  double test_auc = 0;
  uint32_t workers_alive = 0;
  uint64_t workers_launched = 0, workers_failed = 0;
  uint64_t server_restarts = 0;        // server processes restarted (TrainResult's count)
  // Progressive training loss (VW's "average loss"): the mean loss of the rows
  // trained on so far, each taken before its own update, over the ended
  // workers and the live ones' last stats; NaN before any. train_rows: those rows.
  double train_loss = NAN;
  uint64_t train_rows = 0;
  // Workers' traffic with the servers so far (sent + received), over the same
  // workers and rows as train_loss: bytes per trained row; NaN before any.
  double bytes_per_sample = NAN;
  std::string state;                   // "running", then the result's state
};

class TrainJob {
 public:
  // Validates the options and the datasets; nothing runs until Run().
  static Result<std::unique_ptr<TrainJob>> Create(TrainOptions options);
  ~TrainJob();

  // Runs the job to its end on the calling thread. `on_progress` (optional)
  // is called after every evaluation.
  Result<TrainResult> Run(std::function<void(const TrainProgress&)> on_progress = {});
  // Asks Run() to stop (state "killed"); workers are told to stop and killed
  // if they do not exit within a second. Safe from any thread.
  void Kill();
  TrainProgress progress() const;
  // The evaluations so far (a copy; safe from any thread while Run() goes on).
  std::vector<HistoryPoint> history() const;
  // After Run(): writes the trained model to a model file (docs/model-file.md)
  // at `location`: a local path or an object URI such as
  // s3://bucket/models/m.vmdl (IsModelUri, include/virga/model_file.h).
  // The table lives until the job is destroyed. (Run() already keeps a copy
  // in the job's store: TrainResult::model_file.)
  Status SaveModel(const std::string& location);
  const TrainOptions& options() const;

 private:
  struct Impl;
  explicit TrainJob(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The job registry (see TrainOptions::registry_dir).
struct JobEntry {
  std::string job_id;
  std::string state;        // "running", the final state, or "orphaned": registered as running
                            // (or starting) but its process is gone (killed, a closed terminal)
  int pid = 0;              // process running the job
  bool alive = false;       // that process still exists (same pid and start time)
  std::string status_json;  // the job's last status.json
};
std::string DefaultRegistryDir();
// Registered jobs, newest first. Jobs whose process is gone while "running"
// are listed with alive = false and state "orphaned" (their workers stop by
// themselves within ~2 s: docs/training.md, "Faults").
Result<std::vector<JobEntry>> ListJobs(const std::string& registry_dir);
// Asks a job (in any process) to stop: it sees the request within ~20 ms.
// NotFound naming the job if it is not registered.
Status RequestKill(const std::string& registry_dir, const std::string& job_id);

}  // namespace virga
