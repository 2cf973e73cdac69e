// TrainJob: a training job against parameter servers (include/virga/train.h);
// the job loop itself is sched::JobDriver's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "net/shim.h"
#include "ps/server.h"
#include "scheduler/driver_lease.h"
#include "scheduler/job_driver.h"
#include "scheduler/server_process.h"
#include "worker/optimizer_json.h"
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
  std::unique_ptr<sched::ServerProcess> server_proc;  // opt.server_process
  std::unique_ptr<PsClient> client;
  std::unique_ptr<sched::DriverLease> lease;  // <job>/driver, for the workers
  // TrainOptions::emulate_*: a shim per server, and the addresses workers get.
  std::vector<std::unique_ptr<net::NetShim>> shims;
  std::vector<std::string> worker_servers;
  std::string table, queue;
  std::string tls_ca_pem;  // opt.tls_ca_file's text (or the embedded server's certificate)
  std::vector<float> acks;    // per-item processed counts
  // Per server, its "checkpoints" counts: as last read, and this job's share.
  struct CheckpointCounts {
    bool read = false;
    uint64_t last_written = 0, last_failed = 0;
    uint64_t written = 0, failed = 0;
  };
  std::vector<CheckpointCounts> ckpt_seen;

  uint64_t max_fn = 0;  // highest function id launched (<job>/max_fn, for a resume)
  // A server process that could not be restarted yet: since when, and when
  // to try again (CheckServers).
  std::optional<std::chrono::steady_clock::time_point> restart_failing_since;
  std::chrono::steady_clock::time_point next_restart{};

  // Reads the servers' checkpoint counts into the result (best effort).
  void ReadCheckpoints();
  // opt.resume: the original run's options (JobOptionsKey) into opt.
  Status LoadResumeOptions();
  Status SaveResumeOptions() const;
  // opt.resume: the restored state matches the plan; the old run's function
  // keys and stop key are cleared.
  Status CheckResumed();
  // The job's table, queue and per-item counts on the servers.
  Status CreateJobState();
  // CreateJobState, then (server process) a first checkpoint that commits it
  // before any worker starts; a server process that dies before that is
  // started afresh and the state created again.
  Status CreateAndCommitJobState();
  std::vector<uint8_t> done;  // per item: count >= 1

  Status Setup();
  void Cleanup();

  Result<uint64_t> LaunchFunction(uint32_t slot) override;
  Status ReadProgress() override;
  Status ReadWeights(std::span<float> out, uint64_t* updates) override {
    return client->Pull(table, evaluator->keys(), out, updates);
  }
  Status CheckServers() override;
  // tls_ca_pem from opt.tls_ca_file, else the embedded server's certificate.
  Status LoadTlsCa();
  // Starts the server process (opt.server_process) and points opt at it.
  Status StartServerProcess();
  bool WorkLooksDone() override {
    auto qs = client->QueueStats(queue);
    return qs.ok() && qs->pending == 0 && qs->leased == 0 && qs->acked >= plan.payloads.size();
  }
  void SignalStop() override { (void)client->Put(JobStopKey(opt.job_id), "stop"); }
  std::string LiveStats(uint64_t id) override {
    std::string json;
    return client->Get(FunctionStatsKey(opt.job_id, id), &json).ok() ? json : "";
  }
  std::vector<std::optional<std::string>> Heartbeats(std::span<const uint64_t> ids) override {
    std::vector<std::string> keys;
    for (uint64_t id : ids) keys.push_back(FunctionHeartbeatKey(opt.job_id, id));
    auto got = client->MultiGet(keys);
    return got.ok() ? std::move(got).value() : std::vector<std::optional<std::string>>{};
  }
  Status DumpModel(std::vector<std::pair<uint64_t, std::vector<float>>>* rows,
                   std::string* /*extra_json*/) override {
    if (!client) return Status::Unavailable("train: the job's servers are gone");
    return client->DumpTable(table, rows);
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
  c.ftrl_beta = sched::kDefaultFtrlBeta;
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
  if (opt.resume) VIRGA_RETURN_IF_ERROR(LoadResumeOptions());
  if (opt.local_steps > 1 && opt.staleness != -1)
    return Status::InvalidArgument("train: local steps (" + std::to_string(opt.local_steps) +
                                   ") need asynchronous training (staleness -1, not " +
                                   std::to_string(opt.staleness) + "); use --local-steps 1");
  VIRGA_RETURN_IF_ERROR(LoadData());
  if (!opt.resume && (opt.checkpoint_interval_seconds > 0 || opt.server_process))
    VIRGA_RETURN_IF_ERROR(SaveResumeOptions());
  plan = sched::PlanItems(manifest.train, opt.epochs, opt.workers, opt.rows_per_item, opt.seed);
  if (plan.items_per_epoch == 0)
    return Status::InvalidArgument("train: dataset '" + opt.dataset + "' has no training rows");
  table = opt.job_id + ".model";
  queue = opt.job_id + ".items";

  // Servers.
  VIRGA_RETURN_IF_ERROR(LoadTlsCa());
  if (opt.servers.empty() && opt.server_process) {
    VIRGA_RETURN_IF_ERROR(StartServerProcess());
  } else if (opt.servers.empty()) {
    ps::PsServerOptions so;
    so.net.token = sched::RandomToken();
    so.net.threads = sched::EmbeddedServerThreads(backend->name() == "local" ? opt.workers : 0);
    // Checkpoints (on request only) go to the job's store, under checkpoints/<job-id>/.
    so.checkpoint_uri = opt.store;
    so.name = opt.job_id;
    so.checkpoint_every = std::chrono::milliseconds(std::llround(opt.checkpoint_interval_seconds * 1000));
    so.restore = opt.resume;
    so.net.bind = opt.server_bind;
    so.net.tls_cert_file = opt.tls_cert_file;
    so.net.tls_key_file = opt.tls_key_file;
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
  co.tls_ca_pem = tls_ca_pem;
  co.call_timeout = std::chrono::milliseconds(60'000);
  VIRGA_ASSIGN_OR_RETURN(client, PsClient::Connect(co));
  worker_servers = opt.servers;
  if (opt.emulate_one_way_delay.count() > 0 || opt.emulate_bytes_per_second > 0) {
    worker_servers.clear();
    for (const std::string& s : opt.servers) {
      net::ShimOptions so;
      so.target = s;
      so.delay = opt.emulate_one_way_delay;
      so.bytes_per_second = opt.emulate_bytes_per_second;
      shims.push_back(std::make_unique<net::NetShim>(so));
      VIRGA_RETURN_IF_ERROR(shims.back()->Start().WithContext("train: the emulated network"));
      worker_servers.push_back("127.0.0.1:" + std::to_string(shims.back()->port()));
    }
  }

  acks.assign(plan.payloads.size(), 0.0f);
  if (opt.resume) {
    VIRGA_RETURN_IF_ERROR(CheckResumed());
    if (server_proc) VIRGA_RETURN_IF_ERROR(client->Checkpoint().status());
  } else {
    VIRGA_RETURN_IF_ERROR(CreateAndCommitJobState());
  }
  if (server_proc || !opt.servers.empty()) {
    eval_fault_grace = std::chrono::milliseconds(static_cast<int64_t>(opt.server_fault_grace_seconds * 1000));
    max_eval_faults = 2;
  }
  co.call_timeout = std::chrono::milliseconds(2000);  // a late rewrite is as good as none
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<PsClient> lease_client, PsClient::Connect(co));
  lease = std::make_unique<sched::DriverLease>(std::move(lease_client), opt.job_id);
  VIRGA_RETURN_IF_ERROR(lease->status());
  ReadCheckpoints();  // the servers' counts before the job
  Ready(plan.items_per_epoch);
  return Status::OK();
}

Status TrainJob::Impl::CreateJobState() {
  TableConfig tc;
  tc.name = table;
  tc.width = job_model.width;
  tc.init = ModelInfoOf(job_model.kind).init;
  tc.init_scale = ModelInfoOf(job_model.kind).init_scale;
  tc.seed = opt.seed;
  tc.optimizer = opt.optimizer;
  VIRGA_RETURN_IF_ERROR(client->CreateTable(tc));
  VIRGA_RETURN_IF_ERROR(client->Enqueue(queue, plan.payloads).status());
  return client->AddFloats(sched::AcksKey(opt.job_id), acks, nullptr);
}

Status TrainJob::Impl::CreateAndCommitJobState() {
  if (!server_proc) return CreateJobState();
  // Until this checkpoint is committed, a restore could find only a periodic
  // checkpoint taken before (or in the middle of) the setup: a server that
  // dies now is started afresh, never restored.
  for (int attempt = 1;; ++attempt) {
    Status s = CreateJobState();
    if (s.ok()) s = client->Checkpoint().status();
    if (s.ok()) return s;
    const Status::Code c = s.code();  // a server's own refusal is final
    if (c != Status::Code::kUnavailable && c != Status::Code::kIOError &&
        c != Status::Code::kDeadlineExceeded)
      return s;
    // A SIGKILLed server closes its sockets just before it can be reaped.
    for (int i = 0; i < 100 && server_proc->Alive(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (server_proc->Alive() || attempt == 3) return s;
    std::fprintf(stderr, "virga: job %s: parameter server died during setup (%s); starting it "
                         "afresh\n", opt.job_id.c_str(), s.ToString().c_str());
    VIRGA_RETURN_IF_ERROR(server_proc->Start(/*restore=*/false).WithContext("train: server process"));
    ++result.server_restarts;
  }
}

Result<uint64_t> TrainJob::Impl::LaunchFunction(uint32_t /*slot*/) {
  WorkerPayload p;
  p.job = opt.job_id;
  p.servers = worker_servers;
  p.token = opt.token;
  p.tls_ca = tls_ca_pem;
  p.store = opt.store;
  p.dataset = opt.dataset;
  p.table = table;
  p.queue = queue;
  p.model = ModelName(model_kind);
  p.minibatch = opt.minibatch;
  p.staleness = opt.staleness;
  p.send_schedule = opt.send_schedule;
  p.local_steps = opt.local_steps;
  p.optimizer = opt.optimizer;
  p.workers = opt.workers;
  p.epochs = opt.epochs;
  p.items = static_cast<uint32_t>(plan.payloads.size());
  p.lease_ms = opt.lease_ms;
  p.driver_timeout_ms = static_cast<uint32_t>(sched::kDriverLeaseTimeout.count());
  auto id = backend->Launch(PayloadToJson(p), Limits(opt.job_id));
  if (id.ok()) max_fn = std::max(max_fn, *id);
  return id;
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
  ReadCheckpoints();
  // For a resume from a checkpoint: which function keys the old run may have left.
  (void)client->Put(opt.job_id + "/max_fn", std::to_string(max_fn));
  return Status::OK();
}

namespace {

// The options that define a job's plan, model and server, in JobOptionsKey.
nlohmann::json ResumeJson(const TrainOptions& o) {
  return {{"dataset", o.dataset},
          {"test_dataset", o.test_dataset},
          {"model", o.model},
          {"workers", o.workers},
          {"epochs", o.epochs},
          {"minibatch", o.minibatch},
          {"rows_per_item", o.rows_per_item},
          {"seed", o.seed},
          {"staleness", o.staleness},
          {"send_schedule", o.send_schedule},
          {"lease_ms", o.lease_ms},
          {"checkpoint_interval_seconds", o.checkpoint_interval_seconds},
          {"server_process", o.server_process}};
}

}  // namespace

Status TrainJob::Impl::SaveResumeOptions() const {
  nlohmann::json j = ResumeJson(opt);
  j["optimizer"] = OptimizerToJson(opt.optimizer);  // the table's, for workers' local steps
  return store->Put(JobOptionsKey(opt.job_id), j.dump() + "\n")
      .WithContext("job " + opt.job_id + ": options for a resume");
}

Status TrainJob::Impl::LoadResumeOptions() {
  VIRGA_RETURN_IF_ERROR(sched::ValidateJobId(opt.job_id));
  VIRGA_ASSIGN_OR_RETURN(auto st, ObjectStore::Open(opt.store));
  std::string text;
  Status got = st->Get(JobOptionsKey(opt.job_id), &text);
  if (got.IsNotFound()) {
    return Status::NotFound("train --resume: job '" + opt.job_id + "' left no options in " +
                            opt.store + " (only jobs with checkpoints, --checkpoint-interval or "
                            "--server-process, can be resumed)");
  }
  VIRGA_RETURN_IF_ERROR(got);
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json want = ResumeJson(opt);
  if (!j.is_object()) return Status::Corruption(JobOptionsKey(opt.job_id) + ": not a JSON object");
  for (const auto& [k, v] : want.items()) {
    if (!j.contains(k) || j[k].type_name() != std::string(v.type_name()))
      return Status::Corruption(JobOptionsKey(opt.job_id) + ": field '" + k + "' missing or mistyped");
  }
  opt.dataset = j["dataset"];
  opt.test_dataset = j["test_dataset"];
  opt.model = j["model"];
  opt.workers = j["workers"];
  opt.epochs = j["epochs"];
  opt.minibatch = j["minibatch"];
  opt.rows_per_item = j["rows_per_item"];
  opt.seed = j["seed"];
  opt.staleness = j["staleness"];
  opt.send_schedule = j["send_schedule"];
  opt.lease_ms = j["lease_ms"];
  opt.checkpoint_interval_seconds = j["checkpoint_interval_seconds"];
  opt.server_process = j["server_process"];
  if (j.contains("optimizer"))
    VIRGA_RETURN_IF_ERROR(OptimizerFromJson(j["optimizer"], &opt.optimizer)
                              .WithContext(JobOptionsKey(opt.job_id)));
  if (!opt.servers.empty())
    return Status::InvalidArgument("train --resume: needs the job's own (embedded) server");
  return Status::OK();
}

Status TrainJob::Impl::CheckResumed() {
  const std::string where = opt.store + "/checkpoints/" + opt.job_id;
  auto qs = client->QueueStats(queue);
  if (!qs.ok() || qs->enqueued != plan.payloads.size()) {
    return Status::NotFound("train --resume: no checkpoint of job '" + opt.job_id + "' under " +
                            where + " matches its plan");
  }
  std::vector<float> now;
  VIRGA_RETURN_IF_ERROR(client->AddFloats(sched::AcksKey(opt.job_id), acks, &now));
  if (now.size() != acks.size())
    return Status::Corruption("train --resume: the checkpoint's item counts do not match the plan");
  // The old run's functions: their claims would make new functions with the
  // same ids exit as duplicates.
  std::string text;
  uint64_t old_max = 0;
  if (client->Get(opt.job_id + "/max_fn", &text).ok()) old_max = std::strtoull(text.c_str(), nullptr, 10);
  for (uint64_t id = 1; id <= old_max; ++id) {
    for (const std::string& key : {FunctionClaimKey(opt.job_id, id), FunctionKillKey(opt.job_id, id),
                                   FunctionStatsKey(opt.job_id, id), FunctionHeartbeatKey(opt.job_id, id)}) {
      (void)client->Delete(key);
    }
  }
  (void)client->Delete(JobStopKey(opt.job_id));
  return Status::OK();
}

Status TrainJob::Impl::LoadTlsCa() {
  if (opt.tls_cert_file.empty() != opt.tls_key_file.empty())
    return Status::InvalidArgument("train: TLS needs both --tls-cert and --tls-key");
  if (!opt.tls_cert_file.empty() && !opt.servers.empty())
    return Status::InvalidArgument("train: --tls-cert/--tls-key are for the embedded server; "
                                   "with --servers give --tls-ca");
  const std::string& path = !opt.tls_ca_file.empty() ? opt.tls_ca_file : opt.tls_cert_file;
  if (path.empty()) return Status::OK();
  std::ifstream f(path, std::ios::binary);
  tls_ca_pem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (!f.good() && !f.eof()) return Status::IOError("train: cannot read TLS CA " + path);
  if (tls_ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    return Status::InvalidArgument("train: " + path + " holds no PEM certificate (TLS CA)");
  return Status::OK();
}

Status TrainJob::Impl::StartServerProcess() {
  sched::ServerProcessOptions po;
  po.binary = opt.server_binary;
  if (po.binary.empty()) {
    const char* env = std::getenv("VIRGA_BINARY");
    po.binary = env != nullptr && *env != '\0' ? env : "/proc/self/exe";
  }
  po.bind = opt.server_bind;
  po.token = sched::RandomToken();
  po.checkpoint_uri = opt.store;
  po.name = opt.job_id;
  po.tls_cert_file = opt.tls_cert_file;
  po.tls_key_file = opt.tls_key_file;
  po.tls_ca_pem = tls_ca_pem;
  const double every = opt.checkpoint_interval_seconds > 0 ? opt.checkpoint_interval_seconds : 5;
  po.checkpoint_every = std::chrono::milliseconds(std::max<int64_t>(1, std::llround(every * 1000)));
  server_proc = std::make_unique<sched::ServerProcess>(po);
  VIRGA_RETURN_IF_ERROR(server_proc->Start(/*restore=*/opt.resume).WithContext("train: server process"));
  const std::string host = opt.server_advertise.empty() ? opt.server_bind : opt.server_advertise;
  opt.servers = {host + ":" + std::to_string(server_proc->port())};
  opt.token = po.token;
  return Status::OK();
}

Status TrainJob::Impl::CheckServers() {
  if (!server_proc || server_proc->Alive()) return Status::OK();
  const auto t0 = std::chrono::steady_clock::now();
  if (t0 < next_restart) return Status::OK();
  // A restart fails while its checkpoint cannot be read (a storage fault, or
  // a listing that shows nothing for a while): it is retried every half
  // second, for the servers' fault grace, before the job fails.
  Status s = server_proc->Restart();
  if (!s.ok()) {
    const auto grace = std::chrono::duration<double>(opt.server_fault_grace_seconds);
    if (!restart_failing_since) {
      restart_failing_since = t0;
      std::fprintf(stderr, "virga: job %s: parameter server died and cannot be restarted yet "
                           "(%s); retrying for up to %.0f s\n", opt.job_id.c_str(),
                   s.ToString().c_str(), grace.count());
    } else if (t0 - *restart_failing_since >= grace) {
      return s.WithContext("restarting the parameter server");
    }
    next_restart = t0 + std::chrono::milliseconds(500);
    return Status::OK();
  }
  restart_failing_since.reset();
  ++result.server_restarts;
  std::fprintf(stderr, "virga: job %s: parameter server died; restarted from its last checkpoint "
                       "in %.2f s\n", opt.job_id.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return Status::OK();
}

void TrainJob::Impl::ReadCheckpoints() {
  // Per server: the counts last read, and what this job has seen since it
  // started. A server process restarted from a checkpoint counts from 0 again.
  ckpt_seen.resize(client->num_servers());
  for (size_t i = 0; i < client->num_servers(); ++i) {
    auto stats = client->ServerStats(i);
    if (!stats.ok()) continue;
    const auto j = nlohmann::json::parse(*stats, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("checkpoints") || !j["checkpoints"].is_object()) continue;
    const auto& c = j["checkpoints"];
    const uint64_t w = c.value("written", uint64_t{0}), f = c.value("failed", uint64_t{0});
    CheckpointCounts& seen = ckpt_seen[i];
    if (seen.read) {
      const bool reset = w < seen.last_written || f < seen.last_failed;
      seen.written += reset ? w : w - seen.last_written;
      const uint64_t failed = reset ? f : f - seen.last_failed;
      seen.failed += failed;
      // The newest failure's text (kept by the server after a success).
      if (failed > 0) {
        result.checkpoint_error = c.value("last_failure", c.value("last_error", std::string()));
        if (client->num_servers() > 1)
          result.checkpoint_error = opt.servers[i] + ": " + result.checkpoint_error;
      }
    }  // else: the server's history before the job (an external server)
    seen.read = true;
    seen.last_written = w;
    seen.last_failed = f;
  }
  result.checkpoints_written = result.checkpoints_failed = 0;
  for (const CheckpointCounts& seen : ckpt_seen) {
    result.checkpoints_written += seen.written;
    result.checkpoints_failed += seen.failed;
  }
}

void TrainJob::Impl::Cleanup() {
  KillFunctions();
  if (lease) lease->Stop();
  if (client) {
    (void)client->DropQueue(queue);
    (void)client->Delete(JobStopKey(opt.job_id));
    (void)client->Delete(sched::AcksKey(opt.job_id));
    (void)client->Delete(JobDuplicatesKey(opt.job_id));
    for (const auto& f : result.functions) {
      (void)client->Delete(FunctionStatsKey(opt.job_id, f.id));
      (void)client->Delete(FunctionClaimKey(opt.job_id, f.id));
      (void)client->Delete(FunctionKillKey(opt.job_id, f.id));
      (void)client->Delete(FunctionHeartbeatKey(opt.job_id, f.id));
    }
    if (!opt.keep_table) (void)client->DropTable(table);
    client.reset();
  }
  lease.reset();
  server_proc.reset();
  if (server) {
    server->Stop();
    server.reset();
  }
}

}  // namespace virga

namespace virga {

Status TrainJob::SaveModel(const std::string& path) { return impl_->SaveModelTo(path); }

}  // namespace virga
