// TrainJob: a training job against parameter servers (include/virga/train.h);
// the job loop itself is sched::JobDriver's.
#include <algorithm>

#include "ps/server.h"
#include "scheduler/job_driver.h"
#include "scheduler/job_internal.h"
#include "scheduler/work_items.h"
#include "virga/ps_client.h"
#include "virga/train.h"
#include "virga/worker.h"

namespace virga {

using sched::ItemPlan;

// The parameter-server job: the model lives in a table on the servers (an
// embedded one when none are given), work items in the servers' leased
// queue, per-item acknowledgements in a float vector there.
struct TrainJob::Impl : sched::JobDriver {
  ItemPlan plan;
  std::unique_ptr<ps::PsServer> server;
  std::unique_ptr<PsClient> client;
  std::string table, queue;
  std::vector<float> acks;    // per-item processed counts
  std::vector<uint8_t> done;  // per item: count >= 1

  Status Setup();
  void Cleanup();

  Result<uint64_t> LaunchFunction(uint32_t slot) override;
  Status ReadProgress() override;
  Status ReadWeights(std::span<float> out, uint64_t* updates) override {
    return client->Pull(table, evaluator->keys(), out, updates);
  }
  bool WorkLooksDone() override {
    auto qs = client->QueueStats(queue);
    return qs.ok() && qs->pending == 0 && qs->leased == 0 && qs->acked >= plan.payloads.size();
  }
  void SignalStop() override { (void)client->Put(JobStopKey(opt.job_id), "stop"); }
  std::string LiveStats(uint64_t id) override {
    std::string json;
    return client->Get(FunctionStatsKey(opt.job_id, id), &json).ok() ? json : "";
  }
  std::optional<sched::LiveDetail> CollectDetail() override {
    return sched::CollectLiveDetail(*backend, *client, opt.job_id, ActiveFunctions());
  }
  friend class TrainJob;
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
const TrainOptions& TrainJob::options() const { return impl_->options(); }
void TrainJob::Kill() { impl_->Kill(); }
TrainProgress TrainJob::progress() const { return impl_->progress(); }
std::vector<HistoryPoint> TrainJob::history() const { return impl_->history(); }
Result<TrainResult> TrainJob::Run(std::function<void(const TrainProgress&)> on_progress) {
  return impl_->Run(on_progress);
}

Result<std::unique_ptr<TrainJob>> TrainJob::Create(TrainOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  VIRGA_RETURN_IF_ERROR(impl->Setup());
  return std::unique_ptr<TrainJob>(new TrainJob(std::move(impl)));
}

Status TrainJob::Impl::Setup() {
  if (opt.staleness < -1) return Status::InvalidArgument("train: staleness must be >= -1");
  if (opt.send_schedule != "auto" && opt.send_schedule != "early" &&
      opt.send_schedule != "with_push")
    return Status::InvalidArgument("train: send schedule '" + opt.send_schedule +
                                   "' (expected auto, early or with_push)");
  VIRGA_RETURN_IF_ERROR(LoadData());
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
    // Checkpoints (on request only) go to the job's store, under checkpoints/<job-id>/.
    so.checkpoint_uri = opt.store;
    so.name = opt.job_id;
    so.net.bind = opt.server_bind;
    server = std::make_unique<ps::PsServer>(so);
    VIRGA_RETURN_IF_ERROR(server->Start());
    VIRGA_ASSIGN_OR_RETURN(std::string address,
                           ps::EmbeddedServerAddress("train", opt.server_bind,
                                                     opt.server_advertise, server->port()));
    opt.servers = {std::move(address)};
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
  tc.width = job_model.width;
  tc.init = ModelInfoOf(job_model.kind).init;
  tc.init_scale = ModelInfoOf(job_model.kind).init_scale;
  tc.seed = opt.seed;
  tc.optimizer = opt.optimizer;
  VIRGA_RETURN_IF_ERROR(client->CreateTable(tc));
  VIRGA_RETURN_IF_ERROR(client->Enqueue(queue, plan.payloads).status());
  acks.assign(plan.payloads.size(), 0.0f);
  VIRGA_RETURN_IF_ERROR(client->AddFloats(sched::AcksKey(opt.job_id), acks, nullptr));
  VIRGA_RETURN_IF_ERROR(MakeBackend());
  Ready(plan.items_per_epoch);
  return Status::OK();
}

Result<uint64_t> TrainJob::Impl::LaunchFunction(uint32_t /*slot*/) {
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
  return backend->Launch(PayloadToJson(p), Limits(opt.job_id));
}

Status TrainJob::Impl::ReadProgress() {
  std::vector<float> zeros(acks.size(), 0.0f);
  VIRGA_RETURN_IF_ERROR(client->AddFloats(sched::AcksKey(opt.job_id), zeros, &acks));
  const uint32_t per = plan.items_per_epoch;
  done.assign(acks.size(), 0);
  result.items_reprocessed = 0;
  result.samples = 0;
  for (size_t i = 0; i < acks.size(); ++i) {
    if (acks[i] < 1) continue;
    const auto count = static_cast<uint64_t>(acks[i]);
    done[i] = 1;
    result.samples += count * plan.item_rows[i % per];
    result.items_reprocessed += count - 1;
  }
  // Second deliveries of a function (cloud functions run at least once) that
  // found its claim taken and exited without training.
  std::vector<float> duplicates(1, 0.0f);
  if (client->AddFloats(JobDuplicatesKey(opt.job_id), std::vector<float>(1, 0.0f), &duplicates).ok() &&
      !duplicates.empty()) {
    result.duplicate_deliveries = static_cast<uint64_t>(duplicates[0]);
  }
  TallyEpochs(done, plan.item_partition);
  return Status::OK();
}

void TrainJob::Impl::Cleanup() {
  KillFunctions();
  if (client) {
    (void)client->DropQueue(queue);
    (void)client->Delete(JobStopKey(opt.job_id));
    (void)client->Delete(sched::AcksKey(opt.job_id));
    (void)client->Delete(JobDuplicatesKey(opt.job_id));
    for (const auto& f : result.functions) {
      (void)client->Delete(FunctionStatsKey(opt.job_id, f.id));
      (void)client->Delete(FunctionClaimKey(opt.job_id, f.id));
      (void)client->Delete(FunctionKillKey(opt.job_id, f.id));
    }
    if (!opt.keep_table) (void)client->DropTable(table);
    client.reset();
  }
  if (server) {
    server->Stop();
    server.reset();
  }
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
  return j.WriteModelFile(path, rows);
}

}  // namespace virga
