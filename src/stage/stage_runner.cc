// RunTasks (the driver) and RunStageFunction (a function): stage_runner.h.
#include "stage/stage_runner.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "common/cpus.h"
#include "common/time_format.h"
#include "ps/server.h"
#include "virga/ps_client.h"
#include "virga/worker.h"
#include "worker/control.h"

namespace virga::stage {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// A stage function whose driver's control server has not answered for this
// long exits: the server lives in the driver, so the driver is gone.
constexpr std::chrono::milliseconds kDriverGone{3000};

std::string QueueName(std::string_view job) { return std::string(job) + ".tasks"; }
std::string TaskResultKey(std::string_view job, uint64_t index) {
  return std::string(job) + "/task/" + std::to_string(index);
}

std::string HexToken() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) out.push_back(kHex[rd() & 15]);
  return out;
}

uint64_t PeakRss() {
  struct rusage ru {};
  return ::getrusage(RUSAGE_SELF, &ru) == 0 ? static_cast<uint64_t>(ru.ru_maxrss) * 1024 : 0;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// ---- the driver -------------------------------------------------------------

class Driver {
 public:
  Driver(const StageOptions& o, std::string store_uri, std::string_view kind, std::string_view what)
      : o_(o), store_uri_(std::move(store_uri)), kind_(kind), what_(what) {}

  ~Driver() {
    if (backend_) {
      for (uint64_t id : slots_) {
        if (id != 0) (void)backend_->Kill(id);
      }
    }
    if (server_) server_->Stop();
  }

  Result<std::vector<json>> Run(const json& args, const std::vector<json>& tasks, StageStats* stats) {
    const Clock::time_point start = Clock::now();
    std::vector<json> results(tasks.size());
    if (tasks.empty()) return results;
    VIRGA_RETURN_IF_ERROR(Setup(args, tasks));
    const uint32_t functions = static_cast<uint32_t>(std::min<size_t>(tasks.size(), MaxFunctions()));
    slots_.assign(functions, 0);
    for (uint32_t s = 0; s < functions; ++s) VIRGA_RETURN_IF_ERROR(Launch(s));

    std::vector<bool> have(tasks.size(), false);
    size_t done = 0;
    uint64_t last_acked = UINT64_MAX;
    uint32_t failures_since_progress = 0;
    std::string last_failure;
    Clock::time_point last_report{};
    while (done < tasks.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      // Results of tasks acked since the last look.
      Result<QueueCounts> counts = client_->QueueStats(queue_);
      if (!counts.ok()) return counts.status().WithContext(std::string(what_) + ": the stage's server");
      if (counts->acked != last_acked) {
        last_acked = counts->acked;
        std::vector<std::string> keys;
        std::vector<size_t> which;
        for (size_t i = 0; i < tasks.size(); ++i) {
          if (!have[i]) {
            keys.push_back(TaskResultKey(job_, i));
            which.push_back(i);
          }
        }
        auto got = client_->MultiGet(keys);
        if (!got.ok()) return got.status().WithContext(std::string(what_) + ": the stage's server");
        for (size_t k = 0; k < which.size(); ++k) {
          if (!(*got)[k]) continue;
          json r = json::parse(*(*got)[k], nullptr, false);
          if (r.is_object() && r.contains("error")) {
            return Status(CodeOf(r.value("code", "")),
                          r["error"].is_string() ? r["error"].get<std::string>() : "task failed");
          }
          if (!r.is_object() || !r.contains("ok")) {
            return Status::Corruption(fmt::format("{}: task {}: malformed result", what_, which[k]));
          }
          results[which[k]] = std::move(r["ok"]);
          have[which[k]] = true;
          ++done;
          failures_since_progress = 0;
        }
      }
      if (done == tasks.size()) break;
      // Functions: an ended one is replaced while tasks remain.
      uint32_t live = 0;
      for (uint32_t s = 0; s < slots_.size(); ++s) {
        Result<FunctionInfo> info = backend_->Query(slots_[s]);
        if (info.ok() && !IsTerminal(info->state)) {
          ++live;
          continue;
        }
        if (info.ok()) {
          Account(*info);
          if (info->state != FunctionState::kSucceeded) {
            ++failures_since_progress;
            last_failure = info->reason + (info->error_tail.empty() ? "" : ": " + LastLine(info->error_tail));
          }
          backend_->Forget(slots_[s]);
        }
        slots_[s] = 0;
        if (failures_since_progress >= 3 + 2 * slots_.size()) {
          return Status::Unavailable(fmt::format(
              "{}: {} functions in a row ended without finishing a task; the last: {}", what_,
              failures_since_progress, last_failure));
        }
        VIRGA_RETURN_IF_ERROR(Launch(s));
        ++live;
      }
      if (o_.on_progress && Clock::now() - last_report > std::chrono::milliseconds(200)) {
        last_report = Clock::now();
        o_.on_progress({std::string(what_), tasks.size(), done, live, Seconds(start)});
      }
    }
    Finish();
    if (o_.on_progress) {
      o_.on_progress({std::string(what_), tasks.size(), done, 0, Seconds(start)});
    }
    if (stats != nullptr) {
      stats->tasks += tasks.size();
      stats->task_runs += task_runs_;
      stats->functions += launched_;
      stats->functions_failed += failed_;
      stats->duplicates += duplicates_;
      stats->gb_seconds += gb_seconds_;
    }
    return results;
  }

 private:
  static Status::Code CodeOf(const std::string& name) {
    if (name == "NotFound") return Status::Code::kNotFound;
    if (name == "Corruption") return Status::Code::kCorruption;
    if (name == "IOError") return Status::Code::kIOError;
    if (name == "Unavailable") return Status::Code::kUnavailable;
    if (name == "ResourceExhausted") return Status::Code::kResourceExhausted;
    if (name == "AlreadyExists") return Status::Code::kAlreadyExists;
    return Status::Code::kInvalidArgument;
  }

  static std::string LastLine(const std::string& text) {
    size_t end = text.find_last_not_of("\n\r ");
    if (end == std::string::npos) return "";
    size_t begin = text.rfind('\n', end);
    return text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
  }

  size_t MaxFunctions() const {
    if (o_.max_functions > 0) return o_.max_functions;
    if (backend_->name() == "local") return UsableCpus();
    return 100;
  }

  Status Setup(const json& args, const std::vector<json>& tasks) {
    if (o_.backend_instance) {
      backend_ = o_.backend_instance;
    } else {
      VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<ComputeBackend> b, MakeBackend(o_.backend));
      backend_ = std::move(b);
    }
    job_ = NewStageJobId();
    queue_ = QueueName(job_);
    ps::PsServerOptions so;
    so.net.token = HexToken();
    so.net.threads = 1;
    so.net.bind = o_.server_bind;
    server_ = std::make_unique<ps::PsServer>(so);
    VIRGA_RETURN_IF_ERROR(server_->Start().WithContext(std::string(what_) + ": the stage's server"));
    VIRGA_ASSIGN_OR_RETURN(std::string address,
                           ps::EmbeddedServerAddress(what_, o_.server_bind, o_.server_advertise,
                                                     server_->port()));
    PsClientOptions co;
    co.servers = {address};
    co.token = so.net.token;
    co.call_timeout = std::chrono::milliseconds(30'000);
    VIRGA_ASSIGN_OR_RETURN(client_, PsClient::Connect(co));
    std::vector<std::string> items;
    items.reserve(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) items.push_back(std::to_string(i) + " " + tasks[i].dump());
    VIRGA_RETURN_IF_ERROR(client_->Enqueue(queue_, items).status());
    json p = {{"stage", kind_},   {"job", job_},       {"servers", json::array({address})},
              {"token", co.token}, {"store", store_uri_}, {"args", args},
              {"lease_ms", o_.task_lease.count()}};
    payload_ = p.dump();
    return Status::OK();
  }

  Status Launch(uint32_t slot) {
    FunctionLimits limits = o_.limits;
    limits.label = fmt::format("{}/{}", job_, slot);
    Result<uint64_t> id = backend_->Launch(payload_, limits);
    if (!id.ok()) return id.status().WithContext(std::string(what_) + ": launching a function");
    slots_[slot] = *id;
    ++launched_;
    return Status::OK();
  }

  void Account(const FunctionInfo& info) {
    gb_seconds_ += info.gb_seconds;
    if (info.state != FunctionState::kSucceeded) ++failed_;
    // The function's own count of the tasks it ran.
    Result<WorkerResult> r = ResultFromJson(LastLine(info.output));
    if (r.ok()) {
      task_runs_ += r->items_acked;
      duplicates_ += r->end_reason == "duplicate";
    }
  }

  // Stops the functions (they exit at their next look at the stop key) and
  // accounts for them.
  void Finish() {
    (void)client_->Put(JobStopKey(job_), "done");
    const Clock::time_point until = Clock::now() + std::chrono::seconds(5);
    for (uint64_t& id : slots_) {
      if (id == 0) continue;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      Result<FunctionInfo> info = backend_->Wait(id, std::max(left, std::chrono::milliseconds(1)));
      if (info.ok() && !IsTerminal(info->state)) {
        (void)backend_->Kill(id);
        info = backend_->Wait(id, std::chrono::seconds(5));
      }
      if (info.ok() && IsTerminal(info->state)) {
        // A function stopped after the last task is not a failure.
        FunctionInfo copy = *info;
        if (copy.state == FunctionState::kKilled) copy.state = FunctionState::kSucceeded;
        Account(copy);
        backend_->Forget(id);
      }
      id = 0;
    }
    float dup = 0;
    std::string v;
    if (client_->Get(JobDuplicatesKey(job_), &v).ok() && v.size() == sizeof(float)) {
      std::memcpy(&dup, v.data(), sizeof dup);
      duplicates_ = std::max<uint64_t>(duplicates_, static_cast<uint64_t>(dup));
    }
  }

  const StageOptions& o_;
  const std::string store_uri_;
  const std::string kind_;
  const std::string_view what_;
  std::shared_ptr<ComputeBackend> backend_;
  std::unique_ptr<ps::PsServer> server_;
  std::unique_ptr<PsClient> client_;
  std::string job_, queue_, payload_;
  std::vector<uint64_t> slots_;
  uint64_t launched_ = 0, failed_ = 0, task_runs_ = 0, duplicates_ = 0;
  double gb_seconds_ = 0;
};

// ---- the function side ------------------------------------------------------

struct Payload {
  std::string kind, job, token, store;
  std::vector<std::string> servers;
  json args;
  uint32_t lease_ms = 30'000;
};

Result<Payload> ParsePayload(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::InvalidArgument("stage payload: not a JSON object");
  Payload p;
  auto str = [&](const char* name, std::string* out) -> Status {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
      return Status::InvalidArgument(std::string("stage payload: field '") + name +
                                     "': expected a non-empty string");
    }
    *out = it->get<std::string>();
    return Status::OK();
  };
  VIRGA_RETURN_IF_ERROR(str("stage", &p.kind));
  VIRGA_RETURN_IF_ERROR(str("job", &p.job));
  VIRGA_RETURN_IF_ERROR(str("token", &p.token));
  VIRGA_RETURN_IF_ERROR(str("store", &p.store));
  auto servers = j.find("servers");
  if (servers == j.end() || !servers->is_array() || servers->empty()) {
    return Status::InvalidArgument("stage payload: field 'servers': expected a non-empty array");
  }
  for (const auto& s : *servers) {
    if (!s.is_string()) return Status::InvalidArgument("stage payload: field 'servers': expected strings");
    p.servers.push_back(s.get<std::string>());
  }
  p.args = j.value("args", json::object());
  if (auto it = j.find("lease_ms"); it != j.end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() < 100 || it->get<uint64_t>() > 3'600'000) {
      return Status::InvalidArgument("stage payload: field 'lease_ms': expected 100 .. 3600000");
    }
    p.lease_ms = it->get<uint32_t>();
  }
  bool known = false;
  for (const TaskKind& k : TaskKinds()) known |= k.name == p.kind;
  if (!known) return Status::InvalidArgument("stage payload: unknown task kind '" + p.kind + "'");
  return p;
}

const TaskKind* FindKind(std::string_view name) {
  for (const TaskKind& k : TaskKinds()) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string CodeName(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kUnavailable: return "Unavailable";
    case Status::Code::kResourceExhausted: return "ResourceExhausted";
    case Status::Code::kAlreadyExists: return "AlreadyExists";
    default: return "InvalidArgument";
  }
}

uint64_t EnvU64(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : 0;
}

// One function: heartbeat/control thread + task loop on the calling thread.
class Function {
 public:
  explicit Function(Payload p) : p_(std::move(p)) {
    result_.function_id = EnvU64("VIRGA_FUNCTION_ID");
    const uint64_t lifetime = EnvU64("VIRGA_FUNCTION_LIFETIME_MS");
    if (lifetime > 0) {
      const uint64_t margin = std::min<uint64_t>(lifetime / 10, 2000);
      stop_at_ = start_ + std::chrono::milliseconds(lifetime - margin);
    }
  }

  int Run() {
    Status s = Setup();
    if (!s.ok()) return End("error: " + s.ToString(), 1);
    Result<bool> first = worker::ClaimFunction(client_.get(), p_.job, result_.function_id);
    if (!first.ok()) return End("error: " + first.status().ToString(), 1);
    // A second delivery: the first one's stats key is not ours to write.
    if (!*first) return End("duplicate", 0, /*publish=*/false);
    control_ = std::thread([this] { ControlLoop(); });
    const std::string reason = TaskLoop();
    {
      std::lock_guard<std::mutex> l(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    control_.join();
    return End(reason, reason.rfind("error", 0) == 0 ? 1 : 0);
  }

 private:
  Status Setup() {
    VIRGA_ASSIGN_OR_RETURN(store_, ObjectStore::Open(p_.store));
    PsClientOptions co;
    co.servers = p_.servers;
    co.token = p_.token;
    co.call_timeout = std::chrono::milliseconds(30'000);
    co.connect_attempts = 8;
    VIRGA_ASSIGN_OR_RETURN(client_, PsClient::Connect(co));
    VIRGA_ASSIGN_OR_RETURN(control_client_, PsClient::Connect(co));
    kind_ = FindKind(p_.kind);
    return Status::OK();
  }

  std::string TaskLoop() {
    const std::string name = fmt::format("fn-{}-{}", result_.function_id, ::getpid());
    Clock::time_point idle_since = Clock::now();
    for (;;) {
      if (stopping_.load()) return stop_reason_;
      if (Clock::now() >= stop_at_) return "lifetime";
      Result<std::optional<QueueLease>> lease =
          client_->Lease(queue_name(), name, std::chrono::milliseconds(p_.lease_ms));
      if (!lease.ok()) return "error: leasing a task: " + lease.status().ToString();
      if (!*lease) {
        // Nothing pending: done when nothing is leased either (or after 5 s
        // of waiting for another function's task to come back).
        Result<QueueCounts> c = client_->QueueStats(queue_name());
        if (!c.ok()) return "error: " + c.status().ToString();
        if ((c->pending == 0 && c->leased == 0) || Clock::now() - idle_since > std::chrono::seconds(5)) {
          return "done";
        }
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stopping_.load(); });
        continue;
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        current_lease_ = (*lease)->lease_id;
      }
      const std::string& item = (*lease)->payload;
      const size_t space = item.find(' ');
      TaskContext ctx{store_, p_.job, std::strtoull(item.c_str(), nullptr, 10)};
      json task = json::parse(space == std::string::npos ? std::string_view() : std::string_view(item).substr(space + 1),
                              nullptr, false);
      json stored;
      if (!task.is_object()) {
        stored = {{"error", "malformed task item"}, {"code", "Corruption"}};
      } else {
        Result<json> r = kind_->run(ctx, p_.args, task);
        if (r.ok()) {
          stored = {{"ok", std::move(*r)}};
        } else {
          stored = {{"error", r.status().message()}, {"code", CodeName(r.status())}};
        }
      }
      Status put = client_->Put(TaskResultKey(p_.job, ctx.index), stored.dump()).status();
      if (!put.ok()) return "error: storing a task result: " + put.ToString();
      Status ack = client_->Ack(queue_name(), (*lease)->lease_id);
      {
        std::lock_guard<std::mutex> l(mu_);
        current_lease_ = 0;
        ++result_.items_acked;
        if (!ack.ok()) ++result_.items_lost;  // the lease had expired: the task ran elsewhere too
      }
      idle_since = Clock::now();
    }
  }

  std::string queue_name() const { return QueueName(p_.job); }

  // Every 200 ms: the stop and kill keys; every second: live stats and the
  // current task's lease renewed.
  void ControlLoop() {
    const std::string stop_key = JobStopKey(p_.job);
    const std::string kill_key = FunctionKillKey(p_.job, result_.function_id);
    Clock::time_point last_beat{}, last_answer = Clock::now();
    std::unique_lock<std::mutex> l(mu_);
    while (!finished_) {
      cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return finished_; });
      if (finished_) break;
      const uint64_t lease = current_lease_;
      l.unlock();
      bool fault = false;
      const worker::StopReason why = worker::CheckStopKeys(control_client_.get(), stop_key, kill_key, &fault);
      if (!fault) last_answer = Clock::now();
      if (Clock::now() - last_answer > kDriverGone) {
        // The control server lives in the stage's driver: silent this long, the driver is
        // gone (killed, its machine lost) and nobody will read a result.
        std::printf("%s\n", ResultToJson(Snapshot("error: the stage's driver is gone")).c_str());
        std::fflush(stdout);
        std::fprintf(stderr, "virga worker: the stage's driver is gone (no answer for %lld s)\n",
                     static_cast<long long>(kDriverGone.count() / 1000));
        std::_Exit(1);
      }
      if (why == worker::StopReason::kKilled) {
        // A cloud function cannot be signalled: it stops itself, now. The
        // task's lease goes back at once; its partial objects are rewritten
        // by the next run of the task.
        if (lease != 0) (void)control_client_->Release(queue_name(), lease);
        Publish("killed");
        std::fflush(stdout);
        std::printf("%s\n", ResultToJson(Snapshot("killed")).c_str());
        std::fflush(stdout);
        std::_Exit(0);
      }
      if (why == worker::StopReason::kStopped) {
        stop_reason_ = "stopped";
        stopping_.store(true);
      }
      if (Clock::now() - last_beat >= std::chrono::seconds(1)) {
        last_beat = Clock::now();
        Publish("running");
        if (lease != 0) {
          (void)control_client_->Renew(queue_name(), lease, std::chrono::milliseconds(p_.lease_ms));
        }
      }
      l.lock();
    }
  }

  WorkerResult Snapshot(const std::string& reason) {
    WorkerResult r;
    {
      std::lock_guard<std::mutex> l(mu_);
      r = result_;
    }
    r.end_reason = reason;
    r.wall_seconds = Seconds(start_);
    r.peak_rss_bytes = PeakRss();
    return r;
  }

  void Publish(const std::string& reason) {
    (void)control_client_->Put(FunctionStatsKey(p_.job, result_.function_id),
                               ResultToJson(Snapshot(reason)));
  }

  int End(const std::string& reason, int code, bool publish = true) {
    if (publish && control_client_) {
      Publish(reason);
    } else if (publish && client_) {
      (void)client_->Put(FunctionStatsKey(p_.job, result_.function_id), ResultToJson(Snapshot(reason)));
    }
    std::printf("%s\n", ResultToJson(Snapshot(reason)).c_str());
    std::fflush(stdout);
    if (code != 0) std::fprintf(stderr, "virga worker: %s\n", reason.c_str());
    return code;
  }

  const Payload p_;
  const Clock::time_point start_ = Clock::now();
  Clock::time_point stop_at_ = Clock::time_point::max();
  const TaskKind* kind_ = nullptr;
  std::shared_ptr<ObjectStore> store_;
  std::unique_ptr<PsClient> client_, control_client_;
  std::thread control_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;          // GUARDED_BY(mu_)
  uint64_t current_lease_ = 0;     // GUARDED_BY(mu_)
  WorkerResult result_;            // GUARDED_BY(mu_) once the control thread runs
  std::atomic<bool> stopping_{false};
  std::string stop_reason_ = "stopped";
};

}  // namespace

std::string ScratchPrefix(std::string_view dataset, std::string_view job) {
  return "datasets/" + std::string(dataset) + "/_stage/" + std::string(job) + "/";
}

std::string NewStageJobId() { return "stage-" + UtcNowCompact() + "-" + HexToken().substr(0, 6); }

json PartsToJson(const std::vector<PartitionInfo>& parts) {
  json a = json::array();
  for (const PartitionInfo& p : parts) a.push_back({p.key, p.rows, p.nnz, p.bytes});
  return a;
}

std::vector<PartitionInfo> PartsFromJson(const json& a) {
  std::vector<PartitionInfo> out;
  for (const json& e : a) {
    out.push_back({e.at(0).get<std::string>(), e.at(1).get<uint64_t>(), e.at(2).get<uint64_t>(),
                   e.at(3).get<uint64_t>()});
  }
  return out;
}

std::string BackendName(const StageOptions& stage) {
  if (stage.backend_instance) return std::string(stage.backend_instance->name());
  return stage.backend.name.empty() ? DefaultBackendName() : stage.backend.name;
}

Status CheckReachable(std::string_view backend, std::string_view path, std::string_view what) {
  if (backend == "local") return Status::OK();
  if (IsObjectUri(std::string(path)) && !std::string_view(path).starts_with("file://")) {
    return Status::OK();
  }
  return Status::InvalidArgument(fmt::format(
      "{} is on this machine, but functions of the '{}' backend run elsewhere: put it in an "
      "object store (e.g. `aws s3 cp`) and give its s3:// URI",
      what, backend));
}

Result<std::vector<json>> RunTasks(const StageOptions& stage, const std::string& store_uri,
                                   std::string_view kind, std::string_view what, const json& args,
                                   const std::vector<json>& tasks, StageStats* stats) {
  Driver d(stage, store_uri, kind, what);
  return d.Run(args, tasks, stats);
}

bool IsStagePayload(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() && j.contains("stage");
}

int RunStageFunction(std::string_view text, std::string_view source) {
  Result<Payload> p = ParsePayload(text);
  if (!p.ok()) {
    std::fprintf(stderr, "virga worker: %.*s: %s\n", static_cast<int>(source.size()), source.data(),
                 p.status().message().c_str());
    return 2;
  }
  Function f(std::move(*p));
  return f.Run();
}

}  // namespace virga::stage

namespace virga {

std::string StageStats::Summary() const {
  return fmt::format(
      "{} tasks ({} runs) on {} functions ({} failed or lost, {} duplicate deliveries), "
      "{:.1f} GB-s, {:.2f} s",
      tasks, task_runs, functions, functions_failed, duplicates, gb_seconds, seconds);
}

}  // namespace virga
