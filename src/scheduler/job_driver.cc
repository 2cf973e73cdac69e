// JobDriver: the job loop shared by TrainJob and ChannelJob (job_driver.h).
#include "scheduler/job_driver.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "virga/model_file.h"

namespace virga::sched {

using Clock = std::chrono::steady_clock;

namespace {

// Ended by a signal someone else sent (the backend's own kills are kKilled).
bool KilledFromOutside(const FunctionInfo& info) {
  switch (info.term_signal) {
    case SIGKILL:
    case SIGTERM:
    case SIGHUP:
    case SIGINT:
      return true;
    default:
      return false;
  }
}

}  // namespace

Status JobDriver::LoadData() {
  if (opt.dataset.empty()) return Status::InvalidArgument("train: --dataset is required");
  // Durations, for every kind of job (server and storage channels).
  for (const auto& [name, v] : {std::pair{"time limit", opt.time_limit_seconds},
                                {"evaluation interval", opt.eval_interval_seconds},
                                {"checkpoint interval", opt.checkpoint_interval_seconds},
                                {"server fault grace", opt.server_fault_grace_seconds}})
    if (!std::isfinite(v) || v < 0) {
      char got[32];
      std::snprintf(got, sizeof got, "%g", v);
      return Status::InvalidArgument(std::string("train: ") + name +
                                     " must be >= 0 seconds, got " + got);
    }
  if (opt.checkpoint_interval_seconds > 0 && opt.checkpoint_interval_seconds < 0.01)
    return Status::InvalidArgument("train: checkpoint interval must be 0 (never) or >= 0.01 s");
  VIRGA_RETURN_IF_ERROR(MakeBackend());
  if (opt.workers == 0) opt.workers = backend->DefaultWorkers();  // auto
  VIRGA_RETURN_IF_ERROR(ParseModelName(opt.model).status());
  if (opt.job_id.empty()) opt.job_id = NewJobId();
  VIRGA_RETURN_IF_ERROR(ValidateJobId(opt.job_id));
  VIRGA_ASSIGN_OR_RETURN(store, ObjectStore::Open(opt.store));
  VIRGA_ASSIGN_OR_RETURN(manifest, ReadManifest(*store, opt.dataset));
  if (manifest.train_rows == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  VIRGA_ASSIGN_OR_RETURN(job_model, ResolveModel(manifest, &opt));
  model_kind = job_model.kind;
  ResolveAutoSettings(manifest, &opt);
  VIRGA_RETURN_IF_ERROR(opt.optimizer.Validate());
  if (opt.servers.empty()) {  // the embedded server shares this machine
    VIRGA_RETURN_IF_ERROR(
        CheckTableFits(manifest, job_model, opt.optimizer, PhysicalMemoryBytes()));
  }
  const std::string test_name = opt.test_dataset.empty() ? opt.dataset : opt.test_dataset;
  VIRGA_ASSIGN_OR_RETURN(EvaluatorLoad load,
                         PrepareEvaluator(store, test_name, job_model, !opt.test_dataset.empty()));
  evaluator_load_ = std::async(std::launch::async, std::move(load));
  return Status::OK();
}

Status JobDriver::AwaitEvaluator() {
  if (evaluator) return Status::OK();
  if (!evaluator_load_.valid()) return evaluator_error_;
  Result<std::unique_ptr<Evaluator>> loaded = evaluator_load_.get();
  if (!loaded.ok()) {
    evaluator_error_ = loaded.status().WithContext("evaluation rows");
    return evaluator_error_;
  }
  evaluator = std::move(loaded).value();
  weights_.resize(evaluator->keys().size() * job_model.width);
  return Status::OK();
}

Status JobDriver::MakeBackend() {
  if (opt.backend) {
    backend = opt.backend;
  } else {
    VIRGA_ASSIGN_OR_RETURN(backend, virga::MakeBackend(opt.backend_config));
  }
  opt.backend_config.name = backend->name();
  return Status::OK();
}

void JobDriver::Ready(uint32_t items_per_epoch) {
  result.job_id = opt.job_id;
  result.backend = opt.backend_config.name;
  result.model = ModelName(job_model.kind);
  result.width = job_model.width;
  result.metric = PrimaryMetric(ModelInfoOf(job_model.kind).task);
  result.epochs_requested = opt.epochs;
  result.minibatch = opt.minibatch;
  result.local_steps = opt.local_steps;
  result.items_per_epoch = items_per_epoch;
  result.partitions = static_cast<uint32_t>(manifest.train.size());
  result.optimizer = opt.optimizer;
  slot_fn_.assign(opt.workers, 0);
  {
    std::lock_guard lock(progress_mu_);
    live_.epochs = opt.epochs;
    live_.metric = result.metric;
    live_.state = "starting";
  }
  Register();
}

void JobDriver::Register() {
  if (opt.registry_dir == "-") return;
  const std::string dir =
      (opt.registry_dir.empty() ? DefaultRegistryDir() : opt.registry_dir) + "/" + opt.job_id;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return;  // best effort: a job runs without being listed
  registry_ = dir;
  kill_file_ = dir + "/kill";
  std::filesystem::remove(kill_file_, ec);
  WriteJobStatus(registry_, opt, live_, result);
}

void JobDriver::Kill() {
  kill_ = true;
  wake_cv_.notify_all();
}

TrainProgress JobDriver::progress() const {
  std::lock_guard lock(progress_mu_);
  return live_;
}

std::vector<HistoryPoint> JobDriver::history() const {
  std::lock_guard lock(progress_mu_);
  return result.history;
}

bool JobDriver::KillRequested() const {
  return !kill_file_.empty() && ::access(kill_file_.c_str(), F_OK) == 0;
}

bool JobDriver::Diverged() const {
  if (!opt.stop_on_divergence || result.history.empty()) return false;
  const double loss = result.history.back().test_metric;
  if (!std::isfinite(loss)) return true;
  // A binary model starts at (near) zero weights: logloss ln 2. Twice that, or
  // 1.5 x the first evaluation after a few, is clearly worse than the start.
  const ModelTask task = ModelInfoOf(job_model.kind).task;
  if (task == ModelTask::kBinary && loss > 2 * std::log(2.0)) return true;
  return result.history.size() >= 3 && loss > 1.5 * result.history.front().test_metric;
}

std::vector<uint64_t> JobDriver::ActiveFunctions() const {
  std::vector<uint64_t> ids;
  for (uint64_t id : slot_fn_)
    if (id != 0) ids.push_back(id);
  return ids;
}

void JobDriver::Account(const FunctionInfo& info) {
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
  const std::string line = LastLine(info.output);
  if (!line.empty()) {
    if (auto r = ResultFromJson(line); r.ok()) wr = std::move(r).value();
  }
  if (!wr) {
    if (const std::string stats = LiveStats(info.id); !stats.empty()) {
      if (auto r = ResultFromJson(stats); r.ok()) wr = std::move(r).value();
    }
  }
  bool error = info.state != FunctionState::kSucceeded;
  if (wr) {
    rec.samples = wr->samples;
    MergeTimes(wr->times, &result.iteration);
    result.pulls_early += wr->pulls_early;
    result.pulls_with_push += wr->pulls_with_push;
    result.bytes_sent += wr->bytes_sent;
    result.bytes_received += wr->bytes_received;
    ended_loss_sum_ += wr->train_loss * static_cast<double>(wr->samples);
    ended_loss_rows_ += wr->samples;
    if (info.state == FunctionState::kSucceeded) rec.reason = wr->end_reason;
    if (wr->end_reason.rfind("error", 0) == 0) error = true;
  }
  if (auto h = std::find(hung_.begin(), hung_.end(), info.id); h != hung_.end()) {
    hung_.erase(h);
    ++result.workers_hung;
    rec.reason = "hung: no heartbeat, replaced";
  }
  if (info.state == FunctionState::kTimedOut) ++result.workers_timed_out;
  if (info.state == FunctionState::kKilled) ++result.workers_killed;
  if (error && info.state != FunctionState::kKilled && info.state != FunctionState::kTimedOut) {
    ++result.workers_failed;
  }
  // A worker that fails on its own, again and again, with nothing processed
  // means a bad job (e.g. unreadable data): stop instead of respawning forever.
  // A function killed from outside (SIGKILL, SIGTERM, SIGHUP, SIGINT: an
  // operator, a chaos script, a host shutdown) or lost by its platform says
  // nothing about the job: it neither counts nor resets the count.
  if (error && info.state == FunctionState::kFailed && rec.samples == 0 &&
      !KilledFromOutside(info)) {
    ++consecutive_errors_;
    last_error_ = rec.reason + (info.error_tail.empty() ? "" : ": " + LastLine(info.error_tail));
  } else if (rec.samples > 0) {
    consecutive_errors_ = 0;
  }
  result.functions.push_back(std::move(rec));
  backend->Forget(info.id);
}

void JobDriver::CheckHangs() {
  const auto now = Clock::now();
  if (now < next_hang_check_) return;
  next_hang_check_ = now + hang_check_every;
  beats_.resize(slot_fn_.size());
  std::vector<uint64_t> ids;
  std::vector<uint32_t> slots;
  for (uint32_t s = 0; s < slot_fn_.size(); ++s) {
    if (slot_fn_[s] == 0) continue;
    auto info = backend->Query(slot_fn_[s]);
    if (!info.ok() || info->state != FunctionState::kRunning) continue;
    ids.push_back(slot_fn_[s]);
    slots.push_back(s);
  }
  if (ids.empty()) return;
  const std::vector<std::optional<std::string>> got = Heartbeats(ids);
  if (got.size() != ids.size()) return;  // unreadable: no evidence of a hang
  for (size_t i = 0; i < ids.size(); ++i) {
    BeatWatch& w = beats_[slots[i]];
    if (w.fn != ids[i]) w = BeatWatch{ids[i], false, std::nullopt, now};
    if (got[i] && got[i] != w.last) {
      w.beaten = true;
      w.last = got[i];
      w.since = now;
      continue;
    }
    const auto silent = now - w.since;
    if (silent < (w.beaten ? hang_timeout : start_timeout)) continue;
    if (std::find(hung_.begin(), hung_.end(), ids[i]) != hung_.end()) continue;
    hung_.push_back(ids[i]);
    (void)backend->Kill(ids[i]);  // PollFunctions accounts and replaces it
  }
}

void JobDriver::PollFunctions(bool respawn) {
  for (uint32_t s = 0; s < slot_fn_.size(); ++s) {
    if (slot_fn_[s] != 0) {
      auto info = backend->Query(slot_fn_[s]);
      if (info.ok() && !IsTerminal(info->state)) continue;
      if (info.ok()) Account(*info);
      slot_fn_[s] = 0;
    }
    if (!respawn) continue;
    auto id = LaunchFunction(s);
    if (!id.ok()) {
      last_error_ = id.status().ToString();
      ++consecutive_errors_;
      break;  // the backend refuses: try again at the next poll
    }
    slot_fn_[s] = *id;
    ++result.workers_launched;
  }
}

Status JobDriver::Evaluate(double seconds) {
  VIRGA_RETURN_IF_ERROR(AwaitEvaluator());
  uint64_t updates = 0;
  VIRGA_RETURN_IF_ERROR(ReadWeights(weights_, &updates));
  const Metrics m = evaluator->Evaluate(weights_);
  HistoryPoint h;
  h.seconds = seconds;
  h.updates = updates;
  h.samples = result.samples;
  h.test_metric = m.Get(result.metric);
  h.test_logloss = m.logloss;
  h.test_auc = m.auc;
  h.test_accuracy = m.accuracy;
  h.test_rmse = m.rmse;
  h.test_mae = m.mae;
  {
    std::lock_guard lock(progress_mu_);
    result.history.push_back(h);
  }
  result.updates = updates;
  result.test_metric = h.test_metric;
  result.test_logloss = m.logloss;
  result.test_auc = m.auc;
  result.test_accuracy = m.accuracy;
  result.test_rmse = m.rmse;
  result.test_mae = m.mae;
  best_loss_ = std::min(best_loss_, h.test_metric);
  return Status::OK();
}

void JobDriver::Publish(const std::string& state) {
  // Gathered before the lock: it may talk to the backend and the servers.
  std::optional<LiveDetail> detail;
  if (!registry_.empty()) detail = CollectDetail();
  // The live workers' share of the progressive loss: their last published stats.
  double loss_sum = ended_loss_sum_;
  uint64_t loss_rows = ended_loss_rows_;
  uint64_t bytes = result.bytes_sent + result.bytes_received;  // ended workers'
  for (uint64_t id : ActiveFunctions()) {
    const std::string stats = LiveStats(id);
    if (stats.empty()) continue;
    if (auto r = ResultFromJson(stats); r.ok()) {
      loss_sum += r->train_loss * static_cast<double>(r->samples);
      loss_rows += r->samples;
      bytes += r->bytes_sent + r->bytes_received;
    }
  }
  std::lock_guard lock(progress_mu_);
  live_.state = state;
  live_.seconds = result.history.empty() ? 0 : result.history.back().seconds;
  live_.epoch = result.epochs;
  live_.samples = result.samples;
  live_.updates = result.updates;
  live_.samples_per_second = live_.seconds > 0 ? result.samples / live_.seconds : 0;
  live_.metric = result.metric;
  live_.test_metric = result.test_metric;
  live_.best_metric = best_loss_;
  live_.test_logloss = result.test_logloss;
  live_.best_logloss = result.metric == "logloss" ? best_loss_ : NAN;
  live_.test_auc = result.test_auc;
  live_.workers_alive = static_cast<uint32_t>(ActiveFunctions().size());
  live_.workers_launched = result.workers_launched;
  live_.workers_failed = result.workers_failed;
  live_.server_restarts = result.server_restarts;
  live_.train_rows = loss_rows;
  live_.train_loss = loss_rows > 0 ? loss_sum / static_cast<double>(loss_rows) : NAN;
  live_.bytes_per_sample =
      loss_rows > 0 ? static_cast<double>(bytes) / static_cast<double>(loss_rows) : NAN;
  if (!registry_.empty())
    WriteJobStatus(registry_, opt, live_, result, detail ? &*detail : nullptr);
}

void JobDriver::StopWorkers() {
  SignalStop();
  const auto deadline = Clock::now() + stop_grace;
  while (!ActiveFunctions().empty() && Clock::now() < deadline) {
    PollFunctions(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (uint64_t id : slot_fn_)
    if (id != 0) (void)backend->Kill(id);
  for (uint64_t& id : slot_fn_) {
    if (id == 0) continue;
    auto info = backend->Wait(id, std::chrono::seconds(5));
    if (info.ok()) Account(*info);
    id = 0;
  }
}

void JobDriver::TallyEpochs(std::span<const uint8_t> done,
                            std::span<const uint32_t> item_partition) {
  const uint32_t per = result.items_per_epoch;
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
        missing[item_partition[k]] = 1;
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

FunctionLimits JobDriver::Limits(std::string label) const {
  FunctionLimits limits;
  limits.memory_mb = opt.function_memory_mb;
  limits.lifetime = opt.function_timeout;
  limits.max_start_delay = opt.max_start_delay;
  limits.label = std::move(label);
  return limits;
}

void JobDriver::KillFunctions() {
  if (!backend) return;
  for (uint64_t& id : slot_fn_) {
    if (id != 0) (void)backend->Kill(id);
    id = 0;
  }
}

Status JobDriver::WriteModelFile(const std::string& path,
                                 const std::vector<std::pair<uint64_t, std::vector<float>>>& rows,
                                 const std::string& extra_json) const {
  ModelFileHeader h;
  h.model = job_model.kind;
  h.width = job_model.width;
  h.dataset = opt.dataset;
  h.num_features = manifest.num_features;
  h.hash_bits = manifest.hash_bits;
  nlohmann::json training = {{"job", opt.job_id},
                             {"optimizer", OptimizerName(opt.optimizer.kind)},
                             {"learning_rate", opt.optimizer.learning_rate},
                             {"l1", opt.optimizer.l1},
                             {"l2", opt.optimizer.l2},
                             {"minibatch", opt.minibatch},
                             {"epochs", result.epochs},
                             {"workers", opt.workers},
                             {"metric", result.metric},
                             {"test_" + result.metric, result.test_metric}};
  training.update(nlohmann::json::parse(extra_json));
  h.training = training.dump();
  VIRGA_ASSIGN_OR_RETURN(ModelData model, ModelFromRows(std::move(h), rows));
  return virga::SaveModel(path, model);
}

Status JobDriver::SaveModelTo(const std::string& location) {
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  std::string extra = "{}";
  VIRGA_RETURN_IF_ERROR(DumpModel(&rows, &extra));
  assert(std::is_sorted(rows.begin(), rows.end(),
                        [](const auto& a, const auto& b) { return a.first < b.first; }));
  return WriteModelFile(location, rows, extra);
}

Result<TrainResult> JobDriver::Run(const std::function<void(const TrainProgress&)>& on_progress) {
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  std::string state = "running";
  PollFunctions(true);
  auto last_eval = Clock::now();
  Publish(state);
  const auto eval_every = std::chrono::duration<double>(opt.eval_interval_seconds);
  int eval_faults = 0;
  Clock::time_point first_fault;
  while (true) {
    {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return kill_.load(); });
    }
    if (kill_ || KillRequested()) {
      state = "killed";
      break;
    }
    if (Status s = CheckServers(); !s.ok()) {
      state = "failed: " + s.ToString();
      break;
    }
    CheckHangs();
    PollFunctions(true);
    if (consecutive_errors_ >= 3 * opt.workers) {
      state = "failed: " + last_error_;
      break;
    }
    if (Clock::now() - last_eval >= eval_every) {
      last_eval = Clock::now();
      Status s = ReadProgress();
      if (s.ok()) s = Evaluate(elapsed());
      if (!s.ok()) {
        // A storage channel's newest round may move on while it is read: its
        // job tolerates a few faults in a row; a server's job none.
        if (eval_faults++ == 0) {
          first_fault = Clock::now();
          if (eval_fault_grace.count() > 0) {
            std::fprintf(stderr, "virga: job %s: %s; waiting up to %.0f s for the servers\n",
                         opt.job_id.c_str(), s.ToString().c_str(), eval_fault_grace.count() / 1e3);
          }
        }
        if (eval_faults >= max_eval_faults && Clock::now() - first_fault >= eval_fault_grace)
          return s;
        continue;
      }
      eval_faults = 0;
      Publish(state);
      if (on_progress) on_progress(progress());
      if (result.epochs == opt.epochs) {
        state = "done";
        break;
      }
      if (Diverged()) {
        state = "diverged";
        break;
      }
      if (opt.target_loss > 0 && result.test_metric <= opt.target_loss) {
        state = "target_reached";
        break;
      }
    } else if (WorkLooksDone()) {
      last_eval = Clock::now() - std::chrono::hours(1);  // evaluate now, then finish
    }
    if (opt.time_limit_seconds > 0 && elapsed() >= opt.time_limit_seconds) {
      state = "time_limit";
      break;
    }
  }
  result.train_seconds = elapsed();
  StopWorkers();
  // A job that failed for its servers still reports what it did, as last read.
  const bool failed = state.rfind("failed", 0) == 0;
  if (Status s = ReadProgress(); !s.ok() && !failed) return s;
  if (Status s = Evaluate(elapsed()); !s.ok() && !failed) return s;
  result.state = state;
  // The model outlives the job's table and servers: export and predict read it from the store.
  // A failed job keeps none (its servers may be gone or hung: no wait for them).
  const std::string model_uri = store->uri() + "/" + JobModelKey(opt.job_id);
  if (failed) {
    result.model_error = "not kept: the job failed";
  } else if (Status s = SaveModelTo(model_uri); s.ok()) {
    result.model_file = model_uri;
  } else {
    result.model_error = s.ToString();
  }
  result.samples_per_second = result.train_seconds > 0 ? result.samples / result.train_seconds : 0;
  EstimateCost(&result);
  AdjustCost();
  // A result that cannot be stored fails the job (its registry entry says why).
  const Status saved = SaveResult();
  Publish(saved.ok() ? state : "failed: " + saved.ToString());
  if (on_progress) on_progress(progress());
  VIRGA_RETURN_IF_ERROR(saved);
  return result;
}

Status JobDriver::SaveResult() const {
  const std::string key = JobResultKey(opt.job_id);
  return store->Put(key, TrainResultToJson(result) + "\n")
      .WithContext("job " + opt.job_id + ": result " + store->uri() + "/" + key);
}

}  // namespace virga::sched
