// JobDriver: what a training job does whatever way its workers share the
// model. TrainJob (a parameter server) and channel::ChannelJob (a storage
// channel, no server) derive from it and supply the rest through the hooks.
//
// The driver owns: the option and dataset checks, the evaluation rows, the
// compute backend (by name, through the backend registry), one function per worker slot (launch, accounting,
// respawn, the stop at the end), the job registry entry and its kill file,
// the evaluation history, the stop rules (epochs, target loss, time limit,
// divergence, Kill()), the cost estimate and the result JSON in the job's
// store. Not public API.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "scheduler/job_internal.h"
#include "virga/backend.h"
#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/model.h"
#include "virga/object_store.h"
#include "virga/train.h"

namespace virga::sched {

class JobDriver {
 public:
  virtual ~JobDriver() = default;

  // Runs the job to its end on the calling thread; `on_progress` after every
  // evaluation.
  Result<TrainResult> Run(const std::function<void(const TrainProgress&)>& on_progress);
  // Safe from any thread.
  void Kill();
  TrainProgress progress() const;
  std::vector<HistoryPoint> history() const;
  const TrainOptions& options() const { return opt; }
  // Writes the model as it is now to a model file at `location` (a path or a
  // store URI), with the job's settings in its training section.
  Status SaveModelTo(const std::string& location);

 protected:
  // --- setup, called in this order by the derived job's setup ---
  // Checks the options every job needs, assigns the job id, opens the store,
  // reads the dataset's manifest (binary labels, training rows), fills the
  // automatic settings, validates the optimizer and loads the evaluation rows.
  Status LoadData();
  // The configured backend, or the one opt.backend_config names (whose name
  // it then holds).
  Status MakeBackend();
  // The result's fixed fields, the worker slots, "starting", the registry entry.
  void Ready(uint32_t items_per_epoch);

  // --- hooks ---
  // Starts the function of worker `slot`; returns its backend id.
  virtual Result<uint64_t> LaunchFunction(uint32_t slot) = 0;
  // Fills result.samples, epochs, items_processed_per_epoch,
  // partitions_processed_per_epoch and items_reprocessed.
  virtual Status ReadProgress() = 0;
  // The current weights of the evaluator's keys (out.size() of them) and the
  // model's update count.
  virtual Status ReadWeights(std::span<float> out, uint64_t* updates) = 0;
  // A cheap check between evaluations: true when the work is all done (the
  // driver then evaluates at once and, with every epoch counted, ends).
  virtual bool WorkLooksDone() = 0;
  // Tells the workers to stop (they poll for it).
  virtual void SignalStop() = 0;
  // A function's last live stats (WorkerResult JSON) when its output has no
  // result line; "" if none.
  virtual std::string LiveStats(uint64_t /*function_id*/) { return ""; }
  // The heartbeats (<job>/hb/<id>, include/virga/worker.h) of these functions,
  // one per id (nullopt: none yet); an empty vector when they cannot be read
  // or the job has none (no hang detection then).
  virtual std::vector<std::optional<std::string>> Heartbeats(std::span<const uint64_t> /*ids*/) {
    return {};
  }
  // Called every turn of the job loop: a job that runs its own server
  // processes restarts the dead ones here (from their last checkpoint). An
  // error ends the job with it.
  virtual Status CheckServers() { return Status::OK(); }
  // Extra detail for the registry entry (live workers, server stats).
  virtual std::optional<LiveDetail> CollectDetail() { return std::nullopt; }
  // After the common estimate (EstimateCost): a job's own server price.
  virtual void AdjustCost() {}
  // The model's rows (key, width floats) sorted by key (as PsClient::DumpTable
  // gives them), and extra members for the model file's training section (a
  // JSON object's text).
  virtual Status DumpModel(std::vector<std::pair<uint64_t, std::vector<float>>>* rows,
                           std::string* extra_json) = 0;

  // --- helpers for the derived job ---
  // From done[e * items_per_epoch + k] (item k of epoch e processed at least
  // once) and each item's partition: result.items_processed_per_epoch,
  // partitions_processed_per_epoch (partitions with rows, every item done)
  // and epochs (complete epochs from the first on).
  void TallyEpochs(std::span<const uint8_t> done, std::span<const uint32_t> item_partition);
  // The function limits of the options, labelled `label`.
  FunctionLimits Limits(std::string label) const;
  // Kills every live function (cleanup; no accounting).
  void KillFunctions();
  // Function ids of the live slots.
  std::vector<uint64_t> ActiveFunctions() const;
  // Writes `rows` as a model file whose training section holds the job's
  // settings plus `extra` (JSON object members).
  Status WriteModelFile(const std::string& path,
                        const std::vector<std::pair<uint64_t, std::vector<float>>>& rows,
                        const std::string& extra_json = "{}") const;

  TrainOptions opt;
  ModelKind model_kind = ModelKind::kLogisticRegression;
  JobModel job_model;  // kind (model_kind), width and shape
  std::shared_ptr<ObjectStore> store;
  Manifest manifest;
  // The evaluation rows, loaded on a thread of their own from LoadData on:
  // AwaitEvaluator (Evaluate calls it) takes them, or the load's error.
  std::unique_ptr<Evaluator> evaluator;
  std::future<Result<std::unique_ptr<Evaluator>>> evaluator_load_;
  Status evaluator_error_ = Status::Internal("evaluation rows not loaded");
  Status AwaitEvaluator();
  std::shared_ptr<ComputeBackend> backend;
  TrainResult result;
  // Consecutive failed evaluations Run tolerates before it fails the job,
  // and for how long at least (servers being restarted).
  int max_eval_faults = 1;
  std::chrono::milliseconds eval_fault_grace{0};
  // How long stopping workers get to exit on their own before they are killed.
  std::chrono::milliseconds stop_grace{2000};
  // A running function whose heartbeat has not changed for hang_timeout (or
  // that has not beaten at all start_timeout after it was first seen
  // running: a cold start may be slow) is hung: killed and replaced. Workers
  // beat every 500 ms; heartbeats are read every hang_check_every.
  std::chrono::milliseconds hang_timeout{5000};
  std::chrono::milliseconds start_timeout{30000};
  std::chrono::milliseconds hang_check_every{1000};

 private:
  void Register();
  bool KillRequested() const;
  bool Diverged() const;
  void PollFunctions(bool respawn);
  // Kills the hung functions (hang_timeout, start_timeout); PollFunctions replaces them.
  void CheckHangs();
  void Account(const FunctionInfo& info);
  Status Evaluate(double seconds);
  void StopWorkers();
  void Publish(const std::string& state);
  // Writes the result JSON to the job's store (JobResultKey).
  Status SaveResult() const;

  std::atomic<bool> kill_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  mutable std::mutex progress_mu_;
  TrainProgress live_;  // GUARDED_BY(progress_mu_); result.history too

  // Scheduler-thread state.
  std::vector<uint64_t> slot_fn_;  // function id per worker slot; 0 = none
  struct BeatWatch {               // per slot, for CheckHangs
    uint64_t fn = 0;               // the function watched; another id resets the watch
    bool beaten = false;           // a heartbeat was seen
    std::optional<std::string> last;
    std::chrono::steady_clock::time_point since;  // first seen running, or last change
  };
  std::vector<BeatWatch> beats_;
  std::chrono::steady_clock::time_point next_hang_check_{};
  std::vector<uint64_t> hung_;     // killed by CheckHangs, not yet accounted
  std::vector<float> weights_;     // evaluation buffer
  double best_loss_ = INFINITY;
  // Progressive training loss of the ended workers: summed loss, rows (TrainProgress::train_loss).
  double ended_loss_sum_ = 0;
  uint64_t ended_loss_rows_ = 0;
  uint32_t consecutive_errors_ = 0;
  std::string last_error_;
  std::string registry_, kill_file_;
};

}  // namespace virga::sched
