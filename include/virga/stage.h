// Stages on functions: ingest, normalization and scoring run as many
// functions of a compute backend (local processes, AWS Lambda), as training
// does, instead of in the calling process.
//
// A stage is a list of tasks (an ingest part, the statistics of a group of
// partitions, ...). The driver (the calling process) starts an embedded
// parameter server for the stage's control state only: a leased work queue of
// the tasks, the tasks' results in its key-value store, and the control keys
// of include/virga/worker.h (claims, heartbeats, kill, stop). Functions lease
// tasks, run them, store the result, ack, and lease the next, until none is
// left. A function that dies (killed, timed out, lost) loses nothing: its
// task's lease expires and another function runs it again; a second
// delivery of a function exits at once (claims). Tasks are idempotent: they
// write objects under keys that depend only on the task, with the same
// bytes every time, so a task run twice leaves the same result. The stage
// commits (writes the new dataset's manifest) only once every task has a
// result; a task that fails on its input (a parse error) fails the stage
// with the task's message, and the objects it wrote are removed.
//
// Payloads carry references (store URIs, keys, byte ranges), never data, so
// they stay under Lambda's 1 MB cap whatever the input's size.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "virga/backend.h"
#include "virga/evaluator.h"
#include "virga/ingest.h"
#include "virga/metrics.h"
#include "virga/normalize.h"
#include "virga/status.h"

namespace virga {

struct StageProgress {
  std::string stage;        // "ingest", "normalize statistics", ...
  uint64_t tasks = 0;       // in this step
  uint64_t tasks_done = 0;
  uint32_t functions_live = 0;
  double seconds = 0;       // since the step began
};

// What running a stage's functions cost (summed over its steps).
struct StageStats {
  uint64_t tasks = 0;
  uint64_t task_runs = 0;          // > tasks when a task ran again (a lost function's task)
  uint64_t functions = 0;          // launched
  uint64_t functions_failed = 0;   // ended failed, killed, timed out or lost
  uint64_t duplicates = 0;         // second deliveries that exited at once
  double gb_seconds = 0;           // as billed: configured memory x wall time
  double seconds = 0;              // wall time of the whole stage
  std::string Summary() const;     // one line
};

struct StageOptions {
  // Which backend runs the functions, and its settings.
  BackendConfig backend;
  // Tests: a backend already made (then `backend` is not used).
  std::shared_ptr<ComputeBackend> backend_instance;
  // Functions running at once; 0: the machine's CPUs on `local`, 100 elsewhere.
  uint32_t max_functions = 0;
  // Each function's memory cap and lifetime (its start delay, for tests).
  FunctionLimits limits;
  // Where the stage's embedded server listens, and the address functions
  // reach it at (see TrainOptions::server_bind / server_advertise).
  std::string server_bind = "127.0.0.1";
  std::string server_advertise;
  // A task whose function stops answering is run again after this long
  // (a running function renews its task's lease every second).
  std::chrono::milliseconds task_lease{10'000};
  // Ingest: input bytes per task. Uncompressed files larger than this are
  // cut into byte ranges (not CSV files with a header); smaller files are
  // grouped up to it. Compressed files are read whole by one task.
  uint64_t part_bytes = uint64_t{128} << 20;
  // Normalize and score: partitions per task.
  uint32_t partitions_per_task = 16;
  // Called about every 200 ms while a step runs.
  std::function<void(const StageProgress&)> on_progress;
};

// Ingest with one function per part of the input (StageOptions::part_bytes),
// then one manifest. Inputs and the store must be reachable by the functions
// (on Lambda: object URIs, not local files). Row r of part p goes to the test
// split by InTestSplit(split_seed, p * 2^40 + r): for one part this is
// Ingest()'s rule; rows, labels and feature statistics are the same as
// Ingest()'s whatever the parts (the split of rows differs when there are
// several parts). Skipped lines (--on-error skip) are reported through
// options.on_skip (the first 100 per task) and counted exactly.
Result<IngestReport> IngestOnFunctions(const std::string& store_uri, const IngestOptions& options,
                                       const StageOptions& stage, StageStats* stats = nullptr);

// Normalize() on functions: the statistics map (partitions_per_task train
// partitions per task), a tree of reduce tasks (16 inputs each), the scaler
// fitted by the driver, the transform map, and a reduce of the scaled
// statistics; then the manifest. The same output as Normalize().
Result<NormalizeReport> NormalizeOnFunctions(const std::string& store_uri,
                                             const NormalizeOptions& options,
                                             const StageOptions& stage,
                                             StageStats* stats = nullptr);

// Scoring a dataset split with a model file on functions (partitions_per_task
// per task), for every model of the registry: each task writes its rows'
// predictions (Model::Predict: outputs() floats per row) and labels to the
// store; the driver reads them back in partition order and computes the
// metrics of the model's task exactly (ComputeTaskMetrics, the same as the
// in-process evaluator's). `model_uri` must be readable by the functions (an
// object URI on Lambda).
struct ScoreReport {
  uint64_t rows = 0;
  ModelKind model = ModelKind::kLogisticRegression;  // the model file's
  ModelTask task = ModelTask::kBinary;
  uint32_t outputs = 1;       // predictions per row (classes for softmax)
  std::vector<float> scores;  // rows * outputs, in partition order, as Evaluator::Scores
  std::vector<float> labels;
  // The metrics of the task (TaskMetrics(task)); all NaN when `has_metrics`
  // is false: a binary model scoring labels that are not binary.
  Metrics metrics;
  bool has_metrics = false;
  double seconds = 0;
};
Result<ScoreReport> ScoreOnFunctions(const std::string& store_uri, const std::string& model_uri,
                                     const std::string& dataset, Split split,
                                     const StageOptions& stage, StageStats* stats = nullptr);

}  // namespace virga
