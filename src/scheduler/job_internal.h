// Helpers of the scheduler shared by its files (not public API).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/model.h"
#include "virga/ps_client.h"
#include "virga/train.h"
#include "virga/worker.h"

namespace virga::sched {

// Defaults chosen on real data (docs/training.md, "Defaults"): FTRL-Proximal
// with alpha 0.05 and beta 0.15 over minibatches of 20 rows for 5 epochs. The
// small beta lets a rare feature's first updates count (a minibatch's gradient
// is a mean: beta 1 held a feature seen once to 1/20 of its step), which
// reaches the synthetic 2M-row set's target with 1.05M samples instead of
// 1.6M; alpha 0.05 keeps the 7,200-row Criteo sample from overfitting in 5
// epochs (0.4809 with 2 workers, was 0.4812-0.4817; a9a unchanged at 0.3238).
// Adagrad needed a different rate for each data set.
inline constexpr OptimizerKind kDefaultOptimizer = OptimizerKind::kFtrl;
inline constexpr float kDefaultLearningRate = 0.05f;
inline constexpr float kDefaultFtrlBeta = 0.15f;
inline constexpr uint32_t kDefaultMinibatch = 20;
inline constexpr uint32_t kDefaultEpochs = 5;
// Auto epochs (epochs = 0): kDefaultEpochs, or enough passes over a small data
// set to train on kAutoEpochSamples samples, at most kAutoEpochsMax.
inline constexpr uint64_t kAutoEpochSamples = 30000;
inline constexpr uint32_t kAutoEpochsMax = 100;

// "job-<utc yyyymmdd-hhmmss>-<6 hex>"
std::string NewJobId();
// 1..100 bytes of [A-Za-z0-9._-] (it prefixes table, queue and key names).
Status ValidateJobId(std::string_view id);
std::string RandomToken();      // 32 hex chars from the OS's random source

inline std::string AcksKey(std::string_view job) { return std::string(job) + "/acks"; }
// The stop, kill, claim and per-function keys: include/virga/worker.h.
// Last non-empty line of a text (without its newline).
std::string LastLine(std::string_view text);

// Fills the options' automatic (0) settings from the dataset's size.
void ResolveAutoSettings(const Manifest& manifest, TrainOptions* options);

// I/O threads for a job's embedded server: the CPUs of this machine that
// `local_workers` worker processes leave free, but no fewer than one per
// local worker up to the CPU count, at least 1, at most 8 (with workers
// elsewhere, e.g. on Lambda, the server has the machine). A thread per
// worker serves two workers' pulls at once instead of one behind the other:
// measured on 2 CPUs, 2 local workers with 2 threads used 1.74-1.77 cores
// and trained 1.24-1.68M rows/s, with 1 thread 1.48 cores and 1.10-1.18M.
// The threads block when idle (their spin yields to runnable threads).
int EmbeddedServerThreads(uint32_t local_workers);

// The model a job trains, resolved against its dataset.
struct JobModel {
  ModelKind kind = ModelKind::kLogisticRegression;
  uint32_t width = 1;   // floats per key of its table
  ModelShape shape;     // rank, classes as resolved
};
// Parses options->model, takes its shape from the options and the dataset
// (softmax: classes = largest label + 1 unless given), checks that the
// dataset's labels suit the model's task (InvalidArgument naming the dataset,
// the label range and the model), and applies the model's defaults
// (ModelInfo) to the settings the options leave at theirs.
Result<JobModel> ResolveModel(const Manifest& manifest, TrainOptions* options);

// Bytes a server table of the model would take once every feature of the
// dataset has a row: (num_features + 1) keys x a cell of the sparse table
// (8 key + 4 flag + width x (1 + optimizer state) x 4 bytes, padded to 8) x 2
// (open addressing at load <= 3/4, capacities powers of two).
uint64_t EstimateTableBytes(const Manifest& manifest, const JobModel& model,
                            const OptimizerConfig& optimizer);
// InvalidArgument naming the model, its width, the estimate and the limit when
// the table cannot fit `memory_bytes` (the embedded server's machine).
Status CheckTableFits(const Manifest& manifest, const JobModel& model,
                      const OptimizerConfig& optimizer, uint64_t memory_bytes);
// This machine's physical memory in bytes (0 if unknown).
uint64_t PhysicalMemoryBytes();

// The evaluation rows: the test split of `dataset`; with `fallback_to_train`,
// its train split when it has no test split. The checks (the manifest, a
// split to use; InvalidArgument when there is none) are made here; the
// returned function loads the rows, on any thread (a job's workers start
// while it runs).
using EvaluatorLoad = std::function<Result<std::unique_ptr<Evaluator>>()>;
Result<EvaluatorLoad> PrepareEvaluator(std::shared_ptr<ObjectStore> store, std::string_view dataset,
                                       const JobModel& model, bool fallback_to_train);

// Adds `from` to `into` (histograms summed, means weighted by iterations,
// percentiles recomputed from the merged histogram).
void MergeTimes(const IterationTimes& from, IterationTimes* into);

// Prices (documented in docs/training.md): functions at AWS Lambda's
// $0.0000166667 per GB-second plus $0.20 per million invocations; the
// parameter server as one m5.large VM at $0.096 per hour for the job's time.
void EstimateCost(TrainResult* result);

// What a job's registry entry shows beyond its progress (for dashboards): its
// live functions and its servers' stats. Collected on the scheduler thread.
struct LiveWorker {
  FunctionInfo info;       // from the backend while it runs (output empty)
  std::string stats_json;  // its <job>/fn/<id> live stats (WorkerResult JSON); empty if none yet
};
struct LiveDetail {
  std::vector<LiveWorker> workers;
  std::vector<std::string> server_stats;  // PsClient::ServerStats(i) JSON; "" when it failed
};
// Best effort: a backend or server error leaves the entry out.
LiveDetail CollectLiveDetail(ComputeBackend& backend, PsClient& client, const std::string& job,
                             std::span<const uint64_t> active);

// When process `pid` started (clock ticks since boot, /proc/<pid>/stat field
// 22); 0 if unknown. With the pid it names one process, not a reused pid.
uint64_t ProcessStartTicks(int pid);
// Process `pid` runs (not a zombie) and, unless start_ticks is 0, started then.
bool ProcessAlive(int pid, uint64_t start_ticks);

// Writes <dir>/status.json atomically (best effort: a failure only costs the listing).
// `detail` (optional) adds the live workers, the servers' stats and a live cost estimate.
void WriteJobStatus(const std::string& dir, const TrainOptions& options,
                    const TrainProgress& progress, const TrainResult& result,
                    const LiveDetail* detail = nullptr);

}  // namespace virga::sched
