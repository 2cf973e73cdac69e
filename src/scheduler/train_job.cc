// TrainJob: the scheduler loop (see include/virga/train.h).
#include "virga/train.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "ps/server.h"
#include "scheduler/job_internal.h"
#include "scheduler/work_items.h"
#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/model.h"
#include "virga/model_file.h"
#include "virga/object_store.h"
#include "virga/ps_client.h"

namespace virga {

using Clock = std::chrono::steady_clock;
using sched::ItemPlan;

struct TrainJob::Impl {
  TrainOptions opt;
  ModelKind model_kind = ModelKind::kLogisticRegression;
  std::shared_ptr<ObjectStore> store;
  Manifest manifest;
  std::unique_ptr<Evaluator> evaluator;
  ItemPlan plan;
  std::shared_ptr<ComputeBackend> backend;
  std::unique_ptr<ps::PsServer> server;
  std::unique_ptr<PsClient> client;
  std::string table, queue;

  std::atomic<bool> kill{false};
  std::mutex wake_mu;
  std::condition_variable wake_cv;

  mutable std::mutex progress_mu;
  TrainProgress live;  // GUARDED_BY(progress_mu)

  // Scheduler-thread state.
  std::vector<uint64_t> active;        // function ids alive or starting
  std::vector<float> weights;          // evaluation pull buffer
  std::vector<float> acks;             // per-item processed counts
  TrainResult result;
  double best_loss = INFINITY;
  uint32_t consecutive_errors = 0;
  std::string last_error;
  std::string registry;  // this job's registry dir; empty when not registered
  std::string kill_file;

  Status Setup();
  void Register();
  bool KillRequested() const;
  bool Diverged() const;
  Status Launch();
  void PollFunctions(bool respawn);
  void Account(const FunctionInfo& info);
  Status ReadAcks();
  Status Evaluate(double seconds);
  void StopWorkers();
  void Cleanup();
  void Publish(const std::string& state);
};

OptimizerConfig TrainOptions::DefaultOptimizer() {
  OptimizerConfig c;
  c.kind = sched::kDefaultOptimizer;
  c.learning_rate = sched::kDefaultLearningRate;
  c.l2 = 0;
  return c;
}

TrainJob::TrainJob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TrainJob::~TrainJob() {
  if (impl_) impl_->Cleanup();
}
const TrainOptions& TrainJob::options() const { return impl_->opt; }

void TrainJob::Kill() {
  impl_->kill = true;
  impl_->wake_cv.notify_all();
}

TrainProgress TrainJob::progress() const {
  std::lock_guard lock(impl_->progress_mu);
  return impl_->live;
}

std::vector<HistoryPoint> TrainJob::history() const {
  std::lock_guard lock(impl_->progress_mu);
  return impl_->result.history;
}

Result<std::unique_ptr<TrainJob>> TrainJob::Create(TrainOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  VIRGA_RETURN_IF_ERROR(impl->Setup());
  return std::unique_ptr<TrainJob>(new TrainJob(std::move(impl)));
}

Status TrainJob::Impl::Setup() {
  if (opt.dataset.empty()) return Status::InvalidArgument("train: --dataset is required");
  if (opt.workers == 0) return Status::InvalidArgument("train: workers must be >= 1");
  if (opt.staleness < -1) return Status::InvalidArgument("train: staleness must be >= -1");
  if (opt.send_schedule != "auto" && opt.send_schedule != "early" && opt.send_schedule != "with_push")
    return Status::InvalidArgument("train: send schedule '" + opt.send_schedule +
                                   "' (expected auto, early or with_push)");
  VIRGA_ASSIGN_OR_RETURN(model_kind, ParseModelName(opt.model));
  if (opt.job_id.empty()) opt.job_id = sched::NewJobId();
  VIRGA_RETURN_IF_ERROR(sched::ValidateJobId(opt.job_id));
  VIRGA_ASSIGN_OR_RETURN(store, ObjectStore::Open(opt.store));
  VIRGA_ASSIGN_OR_RETURN(manifest, ReadManifest(*store, opt.dataset));
  if (manifest.train_rows == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  if (manifest.label.kind == "real")
    return Status::InvalidArgument("train: dataset '" + opt.dataset +
                                   "' has real-valued labels; lr and svm need binary labels");
  sched::ResolveAutoSettings(manifest, &opt);
  VIRGA_RETURN_IF_ERROR(opt.optimizer.Validate());

  // Evaluation rows.
  const std::string test_name = opt.test_dataset.empty() ? opt.dataset : opt.test_dataset;
  VIRGA_ASSIGN_OR_RETURN(evaluator, sched::LoadEvaluator(*store, test_name, model_kind,
                                                         !opt.test_dataset.empty()));

  plan = sched::PlanItems(manifest.train, opt.epochs, opt.workers, opt.rows_per_item, opt.seed);
  if (plan.items_per_epoch == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  table = opt.job_id + ".model";
  queue = opt.job_id + ".items";

  // Servers.
  if (opt.servers.empty()) {
    ps::PsServerOptions so;
    so.net.token = sched::RandomToken();
    so.net.threads = 1;
    server = std::make_unique<ps::PsServer>(so);
    VIRGA_RETURN_IF_ERROR(server->Start());
    opt.servers = {"127.0.0.1:" + std::to_string(server->port())};
    opt.token = so.net.token;
  } else if (opt.token.empty()) {
    return Status::InvalidArgument("train: a token is required with explicit servers");
  }
  PsClientOptions co;
  co.servers = opt.servers;
  co.token = opt.token;
  co.call_timeout = std::chrono::milliseconds(60'000);
  VIRGA_ASSIGN_OR_RETURN(client, PsClient::Connect(co));

  TableConfig tc;
  tc.name = table;
  tc.width = 1;
  tc.seed = opt.seed;
  tc.optimizer = opt.optimizer;
  VIRGA_RETURN_IF_ERROR(client->CreateTable(tc));
  VIRGA_RETURN_IF_ERROR(client->Enqueue(queue, plan.payloads).status());
  acks.assign(plan.payloads.size(), 0.0f);
  VIRGA_RETURN_IF_ERROR(client->AddFloats(sched::AcksKey(opt.job_id), acks, nullptr));

  if (opt.backend) {
    backend = opt.backend;
  } else {
    LocalBackendOptions lo;
    lo.worker_binary = opt.worker_binary.empty() ? sched::SelfExecutable() : opt.worker_binary;
    lo.worker_args = opt.worker_prefix;
    if (!lo.worker_args.empty()) {
      // The prefix is a command of its own: run it with the binary as an argument.
      lo.worker_args.push_back(lo.worker_binary);
      lo.worker_binary = lo.worker_args.front();
      lo.worker_args.erase(lo.worker_args.begin());
    }
    lo.worker_args.push_back("worker");
    VIRGA_ASSIGN_OR_RETURN(auto b, MakeLocalBackend(lo));
    backend = std::move(b);
  }

  result.job_id = opt.job_id;
  result.epochs_requested = opt.epochs;
  result.minibatch = opt.minibatch;
  result.items_per_epoch = plan.items_per_epoch;
  result.partitions = static_cast<uint32_t>(manifest.train.size());
  result.optimizer = opt.optimizer;
  weights.resize(evaluator->keys().size());
  {
    std::lock_guard lock(progress_mu);
    live.epochs = opt.epochs;
    live.state = "starting";
  }
  Register();
  return Status::OK();
}

void TrainJob::Impl::Register() {
  if (opt.registry_dir == "-") return;
  const std::string dir =
      (opt.registry_dir.empty() ? DefaultRegistryDir() : opt.registry_dir) + "/" + opt.job_id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return;  // best effort: a job runs without being listed
  registry = dir;
  kill_file = dir + "/kill";
  std::filesystem::remove(kill_file, ec);
  sched::WriteJobStatus(registry, opt, live, result);
}

bool TrainJob::Impl::KillRequested() const {
  return !kill_file.empty() && ::access(kill_file.c_str(), F_OK) == 0;
}

bool TrainJob::Impl::Diverged() const {
  if (!opt.stop_on_divergence || result.history.empty()) return false;
  const double loss = result.history.back().test_logloss;
  if (!std::isfinite(loss)) return true;
  // Every model starts at zero weights: logloss ln 2. Twice that, or 1.5 x the
  // first evaluation after a few, is clearly worse than the start.
  if (loss > 2 * std::log(2.0)) return true;
  return result.history.size() >= 3 && loss > 1.5 * result.history.front().test_logloss;
}

Status TrainJob::Impl::Launch() {
  WorkerPayload p;
  p.job = opt.job_id;
  p.servers = opt.servers;
  p.token = opt.token;
  p.store = opt.store;
  p.dataset = opt.dataset;
  p.table = table;
  p.queue = queue;
  p.model = ModelName(model_kind);
  p.minibatch = opt.minibatch;
  p.staleness = opt.staleness;
  p.send_schedule = opt.send_schedule;
  p.workers = opt.workers;
  p.epochs = opt.epochs;
  p.items = static_cast<uint32_t>(plan.payloads.size());
  p.lease_ms = opt.lease_ms;
  FunctionLimits limits;
  limits.memory_mb = opt.function_memory_mb;
  limits.lifetime = opt.function_timeout;
  limits.max_start_delay = opt.max_start_delay;
  limits.label = opt.job_id;
  VIRGA_ASSIGN_OR_RETURN(uint64_t id, backend->Launch(PayloadToJson(p), limits));
  active.push_back(id);
  ++result.workers_launched;
  return Status::OK();
}

void TrainJob::Impl::Account(const FunctionInfo& info) {
  FunctionRecord rec;
  rec.id = info.id;
  rec.state = info.state;
  rec.reason = info.reason;
  rec.wall_seconds = info.wall_seconds;
  rec.gb_seconds = info.gb_seconds;
  rec.peak_rss_bytes = info.peak_rss_bytes;
  result.function_gb_seconds += info.gb_seconds;

  // The worker's own result (last stdout line), else its last live stats.
  std::optional<WorkerResult> wr;
  const std::string line = sched::LastLine(info.output);
  if (!line.empty()) {
    if (auto r = ResultFromJson(line); r.ok()) wr = std::move(r).value();
  }
  if (!wr) {
    std::string live_json;
    if (client->Get(sched::FunctionKey(opt.job_id, info.id), &live_json).ok()) {
      if (auto r = ResultFromJson(live_json); r.ok()) wr = std::move(r).value();
    }
  }
  bool error = info.state != FunctionState::kSucceeded;
  if (wr) {
    rec.samples = wr->samples;
    sched::MergeTimes(wr->times, &result.iteration);
    result.pulls_early += wr->pulls_early;
    result.pulls_with_push += wr->pulls_with_push;
    if (info.state == FunctionState::kSucceeded) rec.reason = wr->end_reason;
    if (wr->end_reason.rfind("error", 0) == 0) error = true;
  }
  switch (info.state) {
    case FunctionState::kTimedOut: ++result.workers_timed_out; break;
    case FunctionState::kKilled: ++result.workers_killed; break;
    case FunctionState::kSucceeded: break;
    default: break;
  }
  if (error && info.state != FunctionState::kKilled && info.state != FunctionState::kTimedOut) {
    ++result.workers_failed;
  }
  // A worker that fails on its own, again and again, with nothing processed
  // means a bad job (e.g. unreadable data): stop instead of respawning forever.
  if (error && info.state == FunctionState::kFailed && rec.samples == 0) {
    ++consecutive_errors;
    last_error = rec.reason + (info.error_tail.empty() ? "" : ": " + sched::LastLine(info.error_tail));
  } else if (rec.samples > 0) {
    consecutive_errors = 0;
  }
  result.functions.push_back(std::move(rec));
  backend->Forget(info.id);
}

void TrainJob::Impl::PollFunctions(bool respawn) {
  for (size_t i = 0; i < active.size();) {
    auto info = backend->Query(active[i]);
    if (!info.ok() || IsTerminal(info->state)) {
      if (info.ok()) Account(*info);
      active.erase(active.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
  if (!respawn) return;
  while (active.size() < opt.workers) {
    if (auto s = Launch(); !s.ok()) {
      last_error = s.ToString();
      ++consecutive_errors;
      break;
    }
  }
}

Status TrainJob::Impl::ReadAcks() {
  std::vector<float> zeros(acks.size(), 0.0f);
  VIRGA_RETURN_IF_ERROR(client->AddFloats(sched::AcksKey(opt.job_id), zeros, &acks));
  const uint32_t per = plan.items_per_epoch;
  result.items_processed_per_epoch.assign(opt.epochs, 0);
  result.partitions_processed_per_epoch.assign(opt.epochs, 0);
  result.items_reprocessed = 0;
  uint64_t samples = 0;
  std::vector<uint8_t> partition_missing(manifest.train.size());
  uint32_t complete_epochs = 0;
  bool prefix = true;
  for (uint32_t e = 0; e < opt.epochs; ++e) {
    std::fill(partition_missing.begin(), partition_missing.end(), 0);
    uint32_t done = 0;
    for (uint32_t k = 0; k < per; ++k) {
      const float c = acks[static_cast<size_t>(e) * per + k];
      if (c >= 1) {
        ++done;
        samples += static_cast<uint64_t>(c) * plan.item_rows[k];
        result.items_reprocessed += static_cast<uint64_t>(c) - 1;
      } else {
        partition_missing[plan.item_partition[k]] = 1;
      }
    }
    result.items_processed_per_epoch[e] = done;
    uint32_t parts = 0;
    for (size_t p = 0; p < manifest.train.size(); ++p) {
      if (!partition_missing[p] && manifest.train[p].rows > 0) ++parts;
    }
    result.partitions_processed_per_epoch[e] = parts;
    if (done == per && prefix) {
      ++complete_epochs;
    } else {
      prefix = false;
    }
  }
  result.epochs = complete_epochs;
  result.samples = samples;
  return Status::OK();
}

Status TrainJob::Impl::Evaluate(double seconds) {
  uint64_t version = 0;
  VIRGA_RETURN_IF_ERROR(client->Pull(table, evaluator->keys(), weights, &version));
  const BinaryMetrics m = evaluator->Evaluate(weights);
  HistoryPoint h;
  h.seconds = seconds;
  h.updates = version;
  h.samples = result.samples;
  h.test_logloss = m.logloss;
  h.test_auc = m.auc;
  h.test_accuracy = m.accuracy;
  {
    std::lock_guard lock(progress_mu);
    result.history.push_back(h);
  }
  result.updates = version;
  result.test_logloss = m.logloss;
  result.test_auc = m.auc;
  result.test_accuracy = m.accuracy;
  if (m.logloss < best_loss) best_loss = m.logloss;
  return Status::OK();
}

void TrainJob::Impl::Publish(const std::string& state) {
  sched::LiveDetail detail;  // gathered before the lock: it talks to the backend and servers
  if (!registry.empty()) detail = sched::CollectLiveDetail(*backend, *client, opt.job_id, active);
  std::lock_guard lock(progress_mu);
  live.state = state;
  live.seconds = result.history.empty() ? 0 : result.history.back().seconds;
  live.epoch = result.epochs;
  live.samples = result.samples;
  live.updates = result.updates;
  live.samples_per_second = live.seconds > 0 ? result.samples / live.seconds : 0;
  live.test_logloss = result.test_logloss;
  live.best_logloss = best_loss;
  live.test_auc = result.test_auc;
  live.workers_alive = static_cast<uint32_t>(active.size());
  live.workers_launched = result.workers_launched;
  live.workers_failed = result.workers_failed;
  if (!registry.empty()) sched::WriteJobStatus(registry, opt, live, result, &detail);
}

void TrainJob::Impl::StopWorkers() {
  (void)client->Put(sched::StopKey(opt.job_id), "stop");
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (!active.empty() && Clock::now() < deadline) {
    PollFunctions(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (uint64_t id : active) (void)backend->Kill(id);
  for (uint64_t id : active) {
    auto info = backend->Wait(id, std::chrono::seconds(5));
    if (info.ok()) Account(*info);
  }
  active.clear();
}

void TrainJob::Impl::Cleanup() {
  if (!active.empty() && backend) {
    for (uint64_t id : active) (void)backend->Kill(id);
    active.clear();
  }
  if (client) {
    (void)client->DropQueue(queue);
    (void)client->Delete(sched::StopKey(opt.job_id));
    (void)client->Delete(sched::AcksKey(opt.job_id));
    for (const auto& f : result.functions) (void)client->Delete(sched::FunctionKey(opt.job_id, f.id));
    if (!opt.keep_table) (void)client->DropTable(table);
    client.reset();
  }
  if (server) {
    server->Stop();
    server.reset();
  }
}

Result<TrainResult> TrainJob::Run(std::function<void(const TrainProgress&)> on_progress) {
  Impl& j = *impl_;
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::string state = "running";
  j.PollFunctions(true);
  auto last_eval = Clock::now();
  j.Publish(state);
  const auto eval_every = std::chrono::duration<double>(j.opt.eval_interval_seconds);
  while (true) {
    {
      std::unique_lock lock(j.wake_mu);
      j.wake_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return j.kill.load(); });
    }
    if (j.kill || j.KillRequested()) {
      state = "killed";
      break;
    }
    j.PollFunctions(true);
    if (j.consecutive_errors >= 3 * j.opt.workers) {
      state = "failed: " + j.last_error;
      break;
    }
    if (Clock::now() - last_eval >= eval_every) {
      last_eval = Clock::now();
      VIRGA_RETURN_IF_ERROR(j.ReadAcks());
      VIRGA_RETURN_IF_ERROR(j.Evaluate(elapsed()));
      j.Publish(state);
      if (on_progress) on_progress(j.live);
      if (j.result.epochs == j.opt.epochs) {
        state = "done";
        break;
      }
      if (j.Diverged()) {
        state = "diverged";
        break;
      }
      if (j.opt.target_loss > 0 && j.result.test_logloss <= j.opt.target_loss) {
        state = "target_reached";
        break;
      }
    } else {
      // Cheap completion check between evaluations.
      auto qs = j.client->QueueStats(j.queue);
      if (qs.ok() && qs->pending == 0 && qs->leased == 0 && qs->acked >= j.plan.payloads.size()) {
        last_eval = Clock::now() - std::chrono::hours(1);  // evaluate now, then finish
      }
    }
    if (j.opt.time_limit_seconds > 0 && elapsed() >= j.opt.time_limit_seconds) {
      state = "time_limit";
      break;
    }
  }
  j.result.train_seconds = elapsed();
  j.StopWorkers();
  VIRGA_RETURN_IF_ERROR(j.ReadAcks());
  VIRGA_RETURN_IF_ERROR(j.Evaluate(elapsed()));
  j.result.state = state;
  j.result.samples_per_second =
      j.result.train_seconds > 0 ? j.result.samples / j.result.train_seconds : 0;
  sched::EstimateCost(&j.result);
  j.Publish(state);
  if (on_progress) on_progress(j.live);
  return j.result;
}

}  // namespace virga

namespace virga {

Status TrainJob::SaveModel(const std::string& path) {
  Impl& j = *impl_;
  if (!j.client) return Status::Unavailable("train: the job's servers are gone");
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  VIRGA_RETURN_IF_ERROR(j.client->DumpTable(j.table, &rows));
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  ModelFileHeader h;
  h.model = j.model_kind;
  h.width = 1;
  h.dataset = j.opt.dataset;
  h.num_features = j.manifest.num_features;
  h.hash_bits = j.manifest.hash_bits;
  nlohmann::json training = {{"job", j.opt.job_id},
                             {"optimizer", OptimizerName(j.opt.optimizer.kind)},
                             {"learning_rate", j.opt.optimizer.learning_rate},
                             {"l1", j.opt.optimizer.l1},
                             {"l2", j.opt.optimizer.l2},
                             {"minibatch", j.opt.minibatch},
                             {"epochs", j.result.epochs},
                             {"workers", j.opt.workers},
                             {"test_logloss", j.result.test_logloss}};
  h.training = training.dump();
  VIRGA_ASSIGN_OR_RETURN(ModelData model, ModelFromRows(std::move(h), rows));
  return virga::SaveModel(path, model);
}

}  // namespace virga
