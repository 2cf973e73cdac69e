// ChannelJob: the scheduler side of a storage-channel job (channel_job.h).
#include "channel/channel_job.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "channel/channel_store.h"
#include "channel/channel_worker.h"
#include "channel/plan.h"
#include "channel/records.h"
#include "scheduler/job_driver.h"
#include "scheduler/job_internal.h"
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

// The storage-channel job: the model, the gradients and the slots' cursors
// live in the channel (object store or Redis); the job follows the newest
// complete round.
struct ChannelJob::Impl : sched::JobDriver {
  ChannelPlan plan;
  uint64_t dim = 0;
  std::unique_ptr<Layout> layout;
  std::unique_ptr<ChannelStore> channel;  // the scheduler thread's connection
  std::vector<Cursor> cursors;
  uint64_t round = 0;        // newest complete round seen
  std::vector<float> model;  // dense model of `round` (evaluation, SaveModel)
  std::vector<ModelChunkHeader> headers;
  std::string buf;
  bool cleaned = false;
  Clock::time_point last_check{};

  Status Setup();
  void Cleanup();
  void AdvanceRound();
  Status ReadModel();
  void ReadCursors();

  Result<uint64_t> LaunchFunction(uint32_t slot) override;
  Status ReadProgress() override {
    ReadCursors();
    return Status::OK();
  }
  Status ReadWeights(std::span<float> out, uint64_t* updates) override;
  bool WorkLooksDone() override;
  void SignalStop() override { (void)channel->Put(layout->Stop(), "stop"); }
  Status DumpModel(std::vector<std::pair<uint64_t, std::vector<float>>>* rows,
                   std::string* extra_json) override;
  void AdjustCost() override {
    // No parameter server: the object store's requests are not priced; a
    // Redis channel pays for its node.
    result.cost_server_usd =
        opt.channel == "redis" ? result.train_seconds / 3600.0 * kRedisNodePerHour : 0.0;
    result.cost_total_usd = result.cost_functions_usd + result.cost_server_usd;
  }
  friend class ChannelJob;
};

Status ChannelJob::Impl::Setup() {
  VIRGA_ASSIGN_OR_RETURN(bool storage, IsStorageChannel(opt));
  if (!storage) return Status::InvalidArgument("train: ChannelJob needs channel store or redis");
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
  {
    // A cloud backend follows its functions through the job's parameter
    // server (claims, heartbeats, kills), which a channel job does not have.
    const std::string backend = opt.backend ? std::string(opt.backend->name())
                                : opt.backend_config.name.empty() ? DefaultBackendName()
                                                                  : opt.backend_config.name;
    if (backend != "local") {
      return Status::InvalidArgument(
          "train: --channel " + opt.channel + " runs on the local backend only, not on '" + backend +
          "' (its functions report through a parameter server, which a channel job does not "
          "have); train on '" + backend + "' without --channel");
    }
  }
  if (auto kind = ParseModelName(opt.model); kind.ok() && !ModelInfoOf(*kind).channel_ok) {
    std::string ok;
    for (const ModelInfo* m : Models()) {
      if (m->channel_ok) ok += (ok.empty() ? "" : ", ") + std::string(m->name);
    }
    return Status::InvalidArgument("train: --channel " + opt.channel + " cannot train model '" +
                                   opt.model + "' (its dense width-1 model serves " + ok +
                                   "); train it with a parameter server (without --channel)");
  }
  VIRGA_RETURN_IF_ERROR(LoadData());
  dim = manifest.num_features + 1;
  if (dim > kMaxDim) {
    return Status::InvalidArgument(
        "train: dataset '" + opt.dataset + "' has " + std::to_string(manifest.num_features) +
        " features; --channel " + opt.channel +
        " keeps a dense model of at most 2^26 (ingest with fewer --hash-bits)");
  }
  if (opt.rows_per_item == 0) opt.rows_per_item = opt.minibatch * kMinibatchesPerRound;
  plan = PlanChannel(manifest.train, opt.epochs, opt.workers, opt.rows_per_item, opt.seed);
  if (plan.items_per_epoch == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  layout = std::make_unique<Layout>(opt.job_id, dim, opt.workers);
  VIRGA_ASSIGN_OR_RETURN(channel, OpenChannel(opt.channel, opt.store, opt.channel_uri));
  VIRGA_RETURN_IF_ERROR(channel->DeletePrefix(layout->prefix()));  // a reused job id
  VIRGA_RETURN_IF_ERROR(WriteInitialRound(*channel, *layout, opt.optimizer));
  cursors.resize(opt.workers);
  model.assign(dim, 0.0f);
  max_eval_faults = 10;  // the newest rounds may move on while one is read
  stop_grace = std::chrono::milliseconds(3000);
  Ready(plan.items_per_epoch);
  return Status::OK();
}

Result<uint64_t> ChannelJob::Impl::LaunchFunction(uint32_t slot) {
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
  return backend->Launch(ChannelPayloadToJson(p),
                         Limits(opt.job_id + "/slot" + std::to_string(slot)));
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
    if (DecodeCursor(buf, key, &c).ok() && c.done.size() == plan.slots[s].size())
      cursors[s] = std::move(c);
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
  TallyEpochs(done, plan.item_partition);
}

// Every 100 ms: the cursors, the newest round (its hint for respawned
// functions), and whether every epoch is done.
bool ChannelJob::Impl::WorkLooksDone() {
  if (Clock::now() - last_check < std::chrono::milliseconds(100)) return false;
  last_check = Clock::now();
  ReadCursors();
  AdvanceRound();
  return result.epochs == opt.epochs;
}

Status ChannelJob::Impl::ReadWeights(std::span<float> out, uint64_t* updates) {
  VIRGA_RETURN_IF_ERROR(ReadModel());
  const auto keys = evaluator->keys();
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t k = keys[i] == kBiasKey ? dim - 1 : keys[i];
    out[i] = k < dim ? model[k] : 0.0f;
  }
  *updates = round;
  return Status::OK();
}

void ChannelJob::Impl::Cleanup() {
  if (cleaned) return;
  cleaned = true;
  KillFunctions();
  if (channel && layout) (void)channel->DeletePrefix(layout->prefix());
}

ChannelJob::ChannelJob(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChannelJob::~ChannelJob() {
  if (impl_) impl_->Cleanup();
}
const TrainOptions& ChannelJob::options() const { return impl_->options(); }
void ChannelJob::Kill() { impl_->Kill(); }
TrainProgress ChannelJob::progress() const { return impl_->progress(); }
std::vector<HistoryPoint> ChannelJob::history() const { return impl_->history(); }
Result<TrainResult> ChannelJob::Run(std::function<void(const TrainProgress&)> on_progress) {
  return impl_->Run(on_progress);
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

Status ChannelJob::SaveModel(const std::string& path) { return impl_->SaveModelTo(path); }

Status ChannelJob::Impl::DumpModel(std::vector<std::pair<uint64_t, std::vector<float>>>* rows,
                                   std::string* extra_json) {
  if (cleaned) return Status::Unavailable("train: the job's channel objects are gone");
  VIRGA_RETURN_IF_ERROR(ReadModel());
  rows->clear();  // in key order: the features, then the bias (the largest key)
  for (uint64_t i = 0; i + 1 < dim; ++i) {
    if (model[i] != 0.0f) rows->push_back({i, {model[i]}});
  }
  rows->push_back({kBiasKey, {model[dim - 1]}});
  *extra_json = nlohmann::json({{"channel", opt.channel}}).dump();
  return Status::OK();
}

bool IsChannelPayload(const std::string& json) {
  return json.find("\"channel_mode\"") != std::string::npos;
}

}  // namespace virga::channel
