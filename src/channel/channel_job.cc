// ChannelJob: the scheduler side of a storage-channel job (channel_job.h).
#include "channel/channel_job.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "channel/channel_store.h"
#include "channel/channel_worker.h"
#include "channel/plan.h"
#include "channel/records.h"
#include "scheduler/job_internal.h"
#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/model.h"
#include "virga/model_file.h"

namespace virga::channel {

using Clock = std::chrono::steady_clock;

namespace {
// Rows per round per slot when TrainOptions::rows_per_item is 0: this many
// minibatches (each a gradient evaluation with the round's model).
constexpr uint32_t kMinibatchesPerRound = 10;
// The dense model and its optimizer state live in storage and in every
// function's memory: bound them (2^26 floats = 256 MiB).
constexpr uint64_t kMaxDim = uint64_t{1} << 26;
// An ElastiCache cache.m5.large node (the Redis a cloud deployment would run), per hour.
constexpr double kRedisNodePerHour = 0.156;
}  // namespace

Result<bool> IsStorageChannel(const TrainOptions& o) {
  if (o.channel == "ps" || o.channel.empty()) return false;
  if (o.channel == "store" || o.channel == "redis") return true;
  return Status::InvalidArgument("train: channel '" + o.channel + "': expected ps, store or redis");
}

struct ChannelJob::Impl {
  TrainOptions opt;
  ModelKind model_kind = ModelKind::kLogisticRegression;
  std::shared_ptr<ObjectStore> store;
  Manifest manifest;
  std::unique_ptr<Evaluator> evaluator;
  ChannelPlan plan;
  uint64_t dim = 0;
  std::unique_ptr<Layout> layout;
  std::unique_ptr<ChannelStore> channel;  // the scheduler thread's connection
  std::shared_ptr<ComputeBackend> backend;

  std::atomic<bool> kill{false};
  std::mutex wake_mu;
  std::condition_variable wake_cv;
  mutable std::mutex progress_mu;
  TrainProgress live;  // GUARDED_BY(progress_mu)

  // Scheduler-thread state.
  std::vector<uint64_t> slot_fn;  // function id per slot; 0 = none
  std::vector<Cursor> cursors;
  uint64_t round = 0;             // newest complete round seen
  std::vector<float> model;       // dense model of `round` (evaluation, SaveModel)
  std::vector<float> weights;     // evaluator's keys
  std::vector<ModelChunkHeader> headers;
  std::string buf;
  TrainResult result;
  double best_loss = INFINITY;
  uint32_t consecutive_errors = 0;
  std::string last_error;
  std::string registry, kill_file;
  bool cleaned = false;
  uint32_t eval_faults = 0;  // consecutive failed evaluations

  Status Setup();
  Status WriteRoundZero();
  void Register();
  bool KillRequested() const { return !kill_file.empty() && ::access(kill_file.c_str(), F_OK) == 0; }
  bool Diverged() const;
  Status Launch(uint32_t slot);
  void PollFunctions(bool respawn);
  void Account(const FunctionInfo& info);
  void AdvanceRound();
  Status ReadModel();
  void ReadCursors();
  bool AllDone() const;
  Status Evaluate(double seconds);
  void StopWorkers();
  void Cleanup();
  void Publish(const std::string& state);
};

Status ChannelJob::Impl::Setup() {
  VIRGA_ASSIGN_OR_RETURN(bool storage, IsStorageChannel(opt));
  if (!storage) return Status::InvalidArgument("train: ChannelJob needs channel store or redis");
  if (opt.dataset.empty()) return Status::InvalidArgument("train: --dataset is required");
  if (opt.workers == 0) return Status::InvalidArgument("train: workers must be >= 1");
  if (opt.channel == "redis" && opt.channel_uri.empty()) {
    return Status::InvalidArgument("train: --channel redis needs --channel-uri redis://host:port");
  }
  if (opt.channel == "store" && !opt.channel_uri.empty() && opt.channel_uri != opt.store) {
    return Status::InvalidArgument("train: --channel store uses --store; --channel-uri '" +
                                   opt.channel_uri + "' is for redis");
  }
  if (!opt.servers.empty()) {
    return Status::InvalidArgument("train: --servers cannot be used with --channel " + opt.channel +
                                   " (there is no parameter server)");
  }
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
  dim = manifest.num_features + 1;
  if (dim > kMaxDim) {
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has " +
                                   std::to_string(manifest.num_features) +
                                   " features; --channel " + opt.channel +
                                   " keeps a dense model of at most 2^26 (ingest with fewer --hash-bits)");
  }
  if (opt.rows_per_item == 0) opt.rows_per_item = opt.minibatch * kMinibatchesPerRound;
  const std::string test_name = opt.test_dataset.empty() ? opt.dataset : opt.test_dataset;
  VIRGA_ASSIGN_OR_RETURN(evaluator, sched::LoadEvaluator(*store, test_name, model_kind,
                                                         !opt.test_dataset.empty()));
  plan = PlanChannel(manifest.train, opt.epochs, opt.workers, opt.rows_per_item, opt.seed);
  if (plan.items_per_epoch == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  layout = std::make_unique<Layout>(opt.job_id, dim, opt.workers);
  VIRGA_ASSIGN_OR_RETURN(channel, OpenChannel(opt.channel, opt.store, opt.channel_uri));
  VIRGA_RETURN_IF_ERROR(WriteRoundZero());

  if (opt.backend) {
    backend = opt.backend;
  } else {
    LocalBackendOptions lo;
    lo.worker_binary = opt.worker_binary.empty() ? sched::SelfExecutable() : opt.worker_binary;
    lo.worker_args = opt.worker_prefix;
    if (!lo.worker_args.empty()) {
      lo.worker_args.push_back(lo.worker_binary);
      lo.worker_binary = lo.worker_args.front();
      lo.worker_args.erase(lo.worker_args.begin());
    }
    lo.worker_args.push_back("worker");
    VIRGA_ASSIGN_OR_RETURN(auto b, MakeLocalBackend(lo));
    backend = std::move(b);
  }
  slot_fn.assign(opt.workers, 0);
  cursors.resize(opt.workers);
  model.assign(dim, 0.0f);
  weights.resize(evaluator->keys().size());
  result.job_id = opt.job_id;
  result.epochs_requested = opt.epochs;
  result.minibatch = opt.minibatch;
  result.items_per_epoch = plan.items_per_epoch;
  result.partitions = static_cast<uint32_t>(manifest.train.size());
  result.optimizer = opt.optimizer;
  {
    std::lock_guard lock(progress_mu);
    live.epochs = opt.epochs;
    live.state = "starting";
  }
  Register();
  return Status::OK();
}

Status ChannelJob::Impl::WriteRoundZero() {
  VIRGA_RETURN_IF_ERROR(channel->DeletePrefix(layout->prefix()));  // a reused job id
  return WriteInitialRound(*channel, *layout, opt.optimizer);
}

void ChannelJob::Impl::Register() {
  if (opt.registry_dir == "-") return;
  const std::string dir =
      (opt.registry_dir.empty() ? DefaultRegistryDir() : opt.registry_dir) + "/" + opt.job_id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return;
  registry = dir;
  kill_file = dir + "/kill";
  std::filesystem::remove(kill_file, ec);
  sched::WriteJobStatus(registry, opt, live, result);
}

bool ChannelJob::Impl::Diverged() const {
  if (!opt.stop_on_divergence || result.history.empty()) return false;
  const double loss = result.history.back().test_logloss;
  if (!std::isfinite(loss)) return true;
  if (loss > 2 * std::log(2.0)) return true;
  return result.history.size() >= 3 && loss > 1.5 * result.history.front().test_logloss;
}

Status ChannelJob::Impl::Launch(uint32_t slot) {
  ChannelPayload p;
  p.mode = opt.channel;
  p.channel_uri = opt.channel_uri;
  p.job = opt.job_id;
  p.store = opt.store;
  p.dataset = opt.dataset;
  p.model = ModelName(model_kind);
  p.slot = slot;
  p.workers = opt.workers;
  p.epochs = opt.epochs;
  p.minibatch = opt.minibatch;
  p.rows_per_item = opt.rows_per_item;
  p.seed = opt.seed;
  p.dim = dim;
  p.optimizer = opt.optimizer;
  p.round_timeout_ms = opt.lease_ms;
  FunctionLimits limits;
  limits.memory_mb = opt.function_memory_mb;
  limits.lifetime = opt.function_timeout;
  limits.max_start_delay = opt.max_start_delay;
  limits.label = opt.job_id + "/slot" + std::to_string(slot);
  VIRGA_ASSIGN_OR_RETURN(uint64_t id, backend->Launch(ChannelPayloadToJson(p), limits));
  slot_fn[slot] = id;
  ++result.workers_launched;
  return Status::OK();
}

void ChannelJob::Impl::Account(const FunctionInfo& info) {
  FunctionRecord rec;
  rec.id = info.id;
  rec.state = info.state;
  rec.reason = info.reason;
  rec.wall_seconds = info.wall_seconds;
  rec.gb_seconds = info.gb_seconds;
  rec.peak_rss_bytes = info.peak_rss_bytes;
  result.function_gb_seconds += info.gb_seconds;
  bool error = info.state != FunctionState::kSucceeded;
  const std::string line = sched::LastLine(info.output);
  if (auto wr = ResultFromJson(line); !line.empty() && wr.ok()) {
    rec.samples = wr->samples;
    sched::MergeTimes(wr->times, &result.iteration);
    if (info.state == FunctionState::kSucceeded) rec.reason = wr->end_reason;
    if (wr->end_reason.rfind("error", 0) == 0) error = true;
  }
  if (info.state == FunctionState::kTimedOut) ++result.workers_timed_out;
  if (info.state == FunctionState::kKilled) ++result.workers_killed;
  if (error && info.state != FunctionState::kKilled && info.state != FunctionState::kTimedOut) {
    ++result.workers_failed;
  }
  if (error && info.state == FunctionState::kFailed && rec.samples == 0) {
    ++consecutive_errors;
    last_error = rec.reason + (info.error_tail.empty() ? "" : ": " + sched::LastLine(info.error_tail));
  } else if (rec.samples > 0) {
    consecutive_errors = 0;
  }
  result.functions.push_back(std::move(rec));
  backend->Forget(info.id);
}

void ChannelJob::Impl::PollFunctions(bool respawn) {
  for (uint32_t s = 0; s < slot_fn.size(); ++s) {
    if (slot_fn[s] != 0) {
      auto info = backend->Query(slot_fn[s]);
      if (info.ok() && !IsTerminal(info->state)) continue;
      if (info.ok()) Account(*info);
      slot_fn[s] = 0;
    }
    if (!respawn) continue;
    if (Status st = Launch(s); !st.ok()) {
      last_error = st.ToString();
      ++consecutive_errors;
    }
  }
}

// Follows the newest complete round and tells functions about it (the hint
// a respawned one starts from).
void ChannelJob::Impl::AdvanceRound() {
  const uint64_t before = round;
  // A slot's cursor names a round whose model was complete when it was read:
  // start there, so a scheduler that fell keep_rounds behind (older rounds
  // deleted) catches up instead of probing a round that is gone.
  for (const Cursor& c : cursors) round = std::max(round, c.round);
  for (;;) {
    bool complete = true;
    for (uint32_t c = 0; c < layout->chunks() && complete; ++c) {
      auto e = channel->Exists(layout->Model(round + 1, c));
      complete = e.ok() && *e;
    }
    if (!complete) break;
    ++round;
  }
  if (round != before) (void)channel->Put(layout->RoundHint(), std::to_string(round));
}

// The model of the newest complete round into `model` (a round deleted
// meanwhile: the next one).
Status ChannelJob::Impl::ReadModel() {
  Status last;
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (attempt > 0) ReadCursors();
    AdvanceRound();
    headers.resize(layout->chunks());
    last = Status::OK();
    for (uint32_t c = 0; c < layout->chunks() && last.ok(); ++c) {
      const std::string key = layout->Model(round, c);
      last = channel->Get(key, &buf);
      if (!last.ok()) break;
      ModelChunkHeader& h = headers[c];
      h.round = round;
      h.chunk = c;
      h.begin = layout->ChunkBegin(c);
      h.size = layout->ChunkSize(c);
      last = DecodeModelChunk(buf, key, &h, model);
    }
    if (last.ok() || !last.IsNotFound()) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return last;
}

// Progress from the slots' cursors: items done per epoch, partitions whose
// every item is done, samples of applied items.
void ChannelJob::Impl::ReadCursors() {
  for (uint32_t s = 0; s < cursors.size(); ++s) {
    const std::string key = layout->Cursor(s);
    if (!channel->Get(key, &buf).ok()) continue;
    Cursor c;
    if (DecodeCursor(buf, key, &c).ok() && c.done.size() == plan.slots[s].size()) cursors[s] = std::move(c);
  }
  const uint32_t per = plan.items_per_epoch;
  std::vector<uint8_t> done(static_cast<size_t>(per) * opt.epochs, 0);
  result.items_reprocessed = 0;
  uint64_t samples = 0;
  for (uint32_t s = 0; s < cursors.size(); ++s) {
    samples += cursors[s].samples;
    for (size_t pos = 0; pos < cursors[s].done.size(); ++pos) {
      const uint8_t n = cursors[s].done[pos];
      if (n == 0) continue;
      done[plan.slots[s][pos].id] = 1;
      result.items_reprocessed += n - 1u;
    }
  }
  result.samples = samples;
  result.items_processed_per_epoch.assign(opt.epochs, 0);
  result.partitions_processed_per_epoch.assign(opt.epochs, 0);
  std::vector<uint8_t> missing(manifest.train.size());
  uint32_t complete = 0;
  bool prefix = true;
  for (uint32_t e = 0; e < opt.epochs; ++e) {
    std::fill(missing.begin(), missing.end(), 0);
    uint32_t n = 0;
    for (uint32_t k = 0; k < per; ++k) {
      if (done[static_cast<size_t>(e) * per + k]) {
        ++n;
      } else {
        missing[plan.item_partition[k]] = 1;
      }
    }
    result.items_processed_per_epoch[e] = n;
    uint32_t parts = 0;
    for (size_t p = 0; p < manifest.train.size(); ++p) {
      if (!missing[p] && manifest.train[p].rows > 0) ++parts;
    }
    result.partitions_processed_per_epoch[e] = parts;
    if (n == per && prefix) {
      ++complete;
    } else {
      prefix = false;
    }
  }
  result.epochs = complete;
}

bool ChannelJob::Impl::AllDone() const { return result.epochs == opt.epochs; }

Status ChannelJob::Impl::Evaluate(double seconds) {
  VIRGA_RETURN_IF_ERROR(ReadModel());
  const auto keys = evaluator->keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t k = keys[i] == kBiasKey ? dim - 1 : keys[i];
    weights[i] = k < dim ? model[k] : 0.0f;
  }
  const BinaryMetrics m = evaluator->Evaluate(weights);
  HistoryPoint h;
  h.seconds = seconds;
  h.updates = round;
  h.samples = result.samples;
  h.test_logloss = m.logloss;
  h.test_auc = m.auc;
  h.test_accuracy = m.accuracy;
  {
    std::lock_guard lock(progress_mu);
    result.history.push_back(h);
  }
  result.updates = round;
  result.test_logloss = m.logloss;
  result.test_auc = m.auc;
  result.test_accuracy = m.accuracy;
  best_loss = std::min(best_loss, m.logloss);
  return Status::OK();
}

void ChannelJob::Impl::Publish(const std::string& state) {
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
  live.workers_alive = static_cast<uint32_t>(std::count_if(slot_fn.begin(), slot_fn.end(),
                                                           [](uint64_t id) { return id != 0; }));
  live.workers_launched = result.workers_launched;
  live.workers_failed = result.workers_failed;
  if (!registry.empty()) sched::WriteJobStatus(registry, opt, live, result);
}

void ChannelJob::Impl::StopWorkers() {
  (void)channel->Put(layout->Stop(), "stop");
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  auto alive = [&] { return std::any_of(slot_fn.begin(), slot_fn.end(), [](uint64_t id) { return id != 0; }); };
  while (alive() && Clock::now() < deadline) {
    PollFunctions(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (uint64_t id : slot_fn) {
    if (id != 0) (void)backend->Kill(id);
  }
  for (uint64_t& id : slot_fn) {
    if (id == 0) continue;
    auto info = backend->Wait(id, std::chrono::seconds(5));
    if (info.ok()) Account(*info);
    id = 0;
  }
}

void ChannelJob::Impl::Cleanup() {
  if (cleaned) return;
  cleaned = true;
  if (backend) {
    for (uint64_t& id : slot_fn) {
      if (id != 0) (void)backend->Kill(id);
      id = 0;
    }
  }
  if (channel && layout) (void)channel->DeletePrefix(layout->prefix());
}

ChannelJob::ChannelJob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChannelJob::~ChannelJob() {
  if (impl_) impl_->Cleanup();
}
const TrainOptions& ChannelJob::options() const { return impl_->opt; }

void ChannelJob::Kill() {
  impl_->kill = true;
  impl_->wake_cv.notify_all();
}

TrainProgress ChannelJob::progress() const {
  std::lock_guard lock(impl_->progress_mu);
  return impl_->live;
}

std::vector<HistoryPoint> ChannelJob::history() const {
  std::lock_guard lock(impl_->progress_mu);
  return impl_->result.history;
}

Result<std::unique_ptr<ChannelJob>> ChannelJob::Create(TrainOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  if (Status s = impl->Setup(); !s.ok()) {
    impl->Cleanup();
    return s;
  }
  return std::unique_ptr<ChannelJob>(new ChannelJob(std::move(impl)));
}

Result<TrainResult> ChannelJob::Run(std::function<void(const TrainProgress&)> on_progress) {
  Impl& j = *impl_;
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::string state = "running";
  j.PollFunctions(true);
  j.Publish(state);
  auto last_eval = Clock::now(), last_check = Clock::now();
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
    if (Clock::now() - last_check >= std::chrono::milliseconds(100)) {
      last_check = Clock::now();
      j.ReadCursors();
      j.AdvanceRound();
      if (j.AllDone()) last_eval = Clock::now() - std::chrono::hours(1);  // evaluate now, then finish
    }
    if (Clock::now() - last_eval >= eval_every) {
      last_eval = Clock::now();
      j.ReadCursors();
      if (Status s = j.Evaluate(elapsed()); !s.ok()) {
        // The newest rounds moved on while it was read: try at the next tick.
        if (++j.eval_faults >= 10) return s;
        continue;
      }
      j.eval_faults = 0;
      j.Publish(state);
      if (on_progress) on_progress(j.live);
      if (j.AllDone()) {
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
    }
    if (j.opt.time_limit_seconds > 0 && elapsed() >= j.opt.time_limit_seconds) {
      state = "time_limit";
      break;
    }
  }
  j.result.train_seconds = elapsed();
  j.StopWorkers();
  j.ReadCursors();
  VIRGA_RETURN_IF_ERROR(j.Evaluate(elapsed()));
  j.result.state = state;
  j.result.samples_per_second = j.result.train_seconds > 0 ? j.result.samples / j.result.train_seconds : 0;
  sched::EstimateCost(&j.result);
  // No parameter server: the object store's requests are not priced; a
  // Redis channel pays for its node.
  j.result.cost_server_usd =
      j.opt.channel == "redis" ? j.result.train_seconds / 3600.0 * kRedisNodePerHour : 0.0;
  j.result.cost_total_usd = j.result.cost_functions_usd + j.result.cost_server_usd;
  j.Publish(state);
  if (on_progress) on_progress(j.live);
  return j.result;
}

Status ChannelJob::SaveModel(const std::string& path) {
  Impl& j = *impl_;
  if (j.cleaned) return Status::Unavailable("train: the job's channel objects are gone");
  VIRGA_RETURN_IF_ERROR(j.ReadModel());
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  for (uint64_t i = 0; i + 1 < j.dim; ++i) {
    if (j.model[i] != 0.0f) rows.push_back({i, {j.model[i]}});
  }
  rows.push_back({kBiasKey, {j.model[j.dim - 1]}});
  ModelFileHeader h;
  h.model = j.model_kind;
  h.width = 1;
  h.dataset = j.opt.dataset;
  h.num_features = j.manifest.num_features;
  h.hash_bits = j.manifest.hash_bits;
  nlohmann::json training = {{"job", j.opt.job_id},
                             {"channel", j.opt.channel},
                             {"optimizer", OptimizerName(j.opt.optimizer.kind)},
                             {"learning_rate", j.opt.optimizer.learning_rate},
                             {"l1", j.opt.optimizer.l1},
                             {"l2", j.opt.optimizer.l2},
                             {"minibatch", j.opt.minibatch},
                             {"epochs", j.result.epochs},
                             {"workers", j.opt.workers},
                             {"test_logloss", j.result.test_logloss}};
  h.training = training.dump();
  VIRGA_ASSIGN_OR_RETURN(ModelData data, ModelFromRows(std::move(h), rows));
  return virga::SaveModel(path, data);
}

bool IsChannelPayload(const std::string& json) {
  return json.find("\"channel_mode\"") != std::string::npos;
}

}  // namespace virga::channel
