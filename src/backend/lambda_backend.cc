#include "backend/lambda_backend.h"

#include <algorithm>
#include <limits>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "aws/lambda_api.h"
#include "lambda/lambda_event.h"
#include "virga/ps_client.h"
#include "virga/worker.h"

namespace virga {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr size_t kAsyncPayloadCap = 1 << 20;  // Lambda's cap on an Event invocation's body

struct Fn {
  std::string job, kv;  // kv: the servers and token of its job, "host:port,...|token"
  std::string event;
  uint64_t memory_mb = 0;
  FunctionInfo info;
  bool invoked = false;
  int attempts = 0;
  Clock::time_point next_attempt{}, invoked_at{}, last_beat{}, kill_at{};
  bool claimed = false;
  std::string last_stats;
  bool kill_requested = false, kill_written = false;
};

// The parts of a worker payload this backend needs.
struct PayloadRef {
  std::string job, servers, token;
};

Result<PayloadRef> ReadPayload(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  auto field = [&](const char* name) -> std::string {
    auto it = j.is_object() ? j.find(name) : j.end();
    if (it == j.end()) return "";
    if (it->is_string()) return it->get<std::string>();
    if (it->is_array()) {
      std::string list;
      for (const auto& s : *it) {
        if (!s.is_string()) return "";
        list += (list.empty() ? "" : ",") + s.get<std::string>();
      }
      return list;
    }
    return "";
  };
  PayloadRef r{field("job"), field("servers"), field("token")};
  if (r.job.empty() || r.servers.empty() || r.token.empty()) {
    return Status::InvalidArgument(
        "the lambda backend runs parameter-server workers (a payload with job, servers and "
        "token); storage-channel jobs run on the local backend");
  }
  return r;
}

bool Transient(long status) { return status == 429 || status >= 500; }

class LambdaBackend final : public ComputeBackend {
 public:
  explicit LambdaBackend(LambdaBackendOptions o) : o_(std::move(o)) {}
  ~LambdaBackend() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [id, f] : fns_) {
        if (!IsTerminal(f.info.state)) f.kill_requested = true;
      }
      closing_ = true;
    }
    cv_.notify_all();
    if (monitor_.joinable()) monitor_.join();
  }

  Status Init() {
    api_ = std::make_unique<aws::LambdaApi>(o_.aws);
    if (o_.check_function) {
      // Throttling (429) and 5xx are retried as invocations are: a throttled
      // check says nothing about the function.
      aws::HttpResponse resp;
      for (int attempt = 1;; ++attempt) {
        VIRGA_RETURN_IF_ERROR(Invoke("DryRun", "{}", &resp));
        if (!Transient(resp.status) || attempt >= o_.max_invoke_attempts) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50 << std::min(attempt, 6)));
      }
      if (resp.status != 204 && resp.status != 200 && resp.status != 202) {
        return Status::InvalidArgument("lambda backend: function '" + o_.function + "' at " +
                                       Where() + ": " + aws::LambdaApi::ErrorText(resp));
      }
    }
    monitor_ = std::thread([this] { Monitor(); });
    return Status::OK();
  }

  std::string_view name() const override { return "lambda"; }

  Result<uint64_t> Launch(std::string_view payload, const FunctionLimits& limits) override {
    VIRGA_ASSIGN_OR_RETURN(PayloadRef ref, ReadPayload(payload));
    Fn f;
    {
      std::lock_guard<std::mutex> l(mu_);
      f.info.id = next_id_++;
    }
    const uint64_t id = f.info.id;
    f.job = ref.job;
    f.kv = ref.servers + "|" + ref.token;
    f.memory_mb = limits.memory_mb;
    lambda::LambdaEvent event;
    event.function_id = id;
    event.label = limits.label;
    event.lifetime_ms = static_cast<uint32_t>(
        std::min<int64_t>(limits.lifetime.count(), std::numeric_limits<uint32_t>::max()));
    event.payload = std::string(payload);
    f.event = lambda::EventToJson(event);
    if (f.event.size() > kAsyncPayloadCap) {
      return Status::InvalidArgument("lambda backend: the event of function " +
                                     std::to_string(id) + " is " +
                                     std::to_string(f.event.size()) +
                                     " bytes, over Lambda's 1 MB (1048576 bytes) cap on "
                                     "asynchronous invocations");
    }
    f.info.label = limits.label;
    f.info.state = FunctionState::kStarting;
    f.info.launched_at = std::chrono::system_clock::now();
    f.next_attempt = Clock::now();
    {
      std::lock_guard<std::mutex> l(mu_);
      fns_.emplace(id, std::move(f));
    }
    cv_.notify_all();
    return id;
  }

  Result<FunctionInfo> Query(uint64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = fns_.find(id);
    if (it == fns_.end()) return Status::NotFound("lambda function " + std::to_string(id));
    return Snapshot(it->second);
  }

  Status Kill(uint64_t id) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = fns_.find(id);
      if (it == fns_.end()) return Status::NotFound("lambda function " + std::to_string(id));
      Fn& f = it->second;
      if (IsTerminal(f.info.state)) return Status::OK();
      if (!f.invoked) {
        End(&f, FunctionState::kKilled, "killed before it was invoked");
      } else if (!f.kill_requested) {
        f.kill_requested = true;
        f.kill_at = Clock::now();
      }
    }
    cv_.notify_all();
    return Status::OK();
  }

  Result<FunctionInfo> Wait(uint64_t id, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> l(mu_);
    auto done = [&] {
      auto it = fns_.find(id);
      return it == fns_.end() || IsTerminal(it->second.info.state);
    };
    cv_.wait_for(l, timeout, done);
    auto it = fns_.find(id);
    if (it == fns_.end()) return Status::NotFound("lambda function " + std::to_string(id));
    return Snapshot(it->second);
  }

  std::vector<FunctionInfo> List() override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<FunctionInfo> out;
    for (const auto& [id, f] : fns_) {
      FunctionInfo i = Snapshot(f);
      i.output.clear();
      out.push_back(std::move(i));
    }
    return out;
  }

  void Forget(uint64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = fns_.find(id);
    if (it != fns_.end() && IsTerminal(it->second.info.state)) fns_.erase(it);
  }

 private:
  std::string Where() const { return api_->endpoint(); }

  FunctionInfo Snapshot(const Fn& f) const {
    FunctionInfo i = f.info;
    if (!IsTerminal(i.state) && f.invoked) {
      i.wall_seconds = std::chrono::duration<double>(Clock::now() - f.invoked_at).count();
    }
    return i;
  }

  // REQUIRES: mu_ held.
  void End(Fn* f, FunctionState state, std::string reason) {
    f->info.state = state;
    f->info.reason = std::move(reason);
    if (f->info.wall_seconds == 0 && f->invoked) {
      f->info.wall_seconds = std::chrono::duration<double>(Clock::now() - f->invoked_at).count();
    }
    f->info.gb_seconds = f->memory_mb / 1024.0 * f->info.wall_seconds;
    cv_.notify_all();
  }

  Status Invoke(const char* type, std::string_view body, aws::HttpResponse* resp) {
    Status st = api_->Invoke(o_.function, o_.qualifier, type, body, resp);
    if (!st.ok()) {
      return Status(st.code(), "lambda backend: invoking '" + o_.function + "': " + st.message());
    }
    return Status::OK();
  }

  // Sends one pending invocation (monitor thread, mu_ not held).
  void SendInvocation(uint64_t id, const std::string& event) {
    aws::HttpResponse resp;
    Status st = Invoke("Event", event, &resp);
    std::lock_guard<std::mutex> l(mu_);
    auto it = fns_.find(id);
    if (it == fns_.end() || IsTerminal(it->second.info.state)) return;
    Fn& f = it->second;
    ++f.attempts;
    if (st.ok() && resp.status == 202) {
      f.invoked = true;
      f.invoked_at = Clock::now();
      return;
    }
    const bool transient = st.ok() ? Transient(resp.status) : st.code() == Status::Code::kUnavailable;
    const std::string why = st.ok() ? aws::LambdaApi::ErrorText(resp) : st.message();
    if (!transient || f.attempts >= o_.max_invoke_attempts) {
      End(&f, FunctionState::kFailed,
          "invoke of '" + o_.function + "' at " + Where() + " failed: " + why +
              (transient ? " (after " + std::to_string(f.attempts) + " tries)" : ""));
      return;
    }
    // Exponential backoff with full jitter: 100 ms doubling, at most 5 s.
    const int64_t cap = std::min<int64_t>(5000, int64_t{100} << std::min(f.attempts, 10));
    f.next_attempt = Clock::now() + std::chrono::milliseconds(
                                        std::uniform_int_distribution<int64_t>(cap / 4, cap)(rng_));
  }

  PsClient* Kv(const std::string& kv) {
    auto it = kv_.find(kv);
    if (it != kv_.end()) return it->second.get();
    size_t bar = kv.rfind('|');
    PsClientOptions po;
    auto servers = ParseServerList(kv.substr(0, bar));
    if (!servers.ok()) return nullptr;
    po.servers = *servers;
    po.token = kv.substr(bar + 1);
    po.connect_attempts = 2;
    auto c = PsClient::Connect(po);
    if (!c.ok()) return nullptr;
    return kv_.emplace(kv, std::move(*c)).first->second.get();
  }

  // Reads the claim and stats keys of invoked functions and updates them
  // (monitor thread).
  void PollStates() {
    struct Probe {
      uint64_t id;
      std::string kv, job;
      bool kill;
    };
    std::vector<Probe> probes;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (auto& [id, f] : fns_) {
        if (f.invoked && (!IsTerminal(f.info.state) || (f.kill_requested && !f.kill_written))) {
          probes.push_back({id, f.kv, f.job, f.kill_requested && !f.kill_written});
        }
      }
    }
    std::map<std::string, std::vector<size_t>> by_kv;
    for (size_t i = 0; i < probes.size(); ++i) by_kv[probes[i].kv].push_back(i);
    for (auto& [kv, idx] : by_kv) {
      PsClient* c = Kv(kv);
      if (c == nullptr) {
        kv_.erase(kv);
        continue;  // the job's server is not reachable now: states stay as they were
      }
      std::vector<std::string> keys;
      for (size_t i : idx) {
        const Probe& p = probes[i];
        if (p.kill) (void)c->Put(FunctionKillKey(p.job, p.id), "kill");
        keys.push_back(FunctionClaimKey(p.job, p.id));
        keys.push_back(FunctionStatsKey(p.job, p.id));
      }
      auto got = c->MultiGet(keys);
      if (!got.ok()) {
        kv_.erase(kv);
        continue;
      }
      std::lock_guard<std::mutex> l(mu_);
      for (size_t k = 0; k < idx.size(); ++k) {
        auto it = fns_.find(probes[idx[k]].id);
        if (it == fns_.end()) continue;
        if (probes[idx[k]].kill) it->second.kill_written = true;
        Update(&it->second, (*got)[2 * k], (*got)[2 * k + 1]);
      }
    }
  }

  // REQUIRES: mu_ held.
  void Update(Fn* f, const std::optional<std::string>& claim,
              const std::optional<std::string>& stats) {
    if (IsTerminal(f->info.state)) return;
    const Clock::time_point now = Clock::now();
    if (claim && !f->claimed) {
      f->claimed = true;
      f->last_beat = now;
      f->info.state = FunctionState::kRunning;
    }
    if (stats && *stats != f->last_stats) {
      f->last_stats = *stats;
      f->last_beat = now;
      f->info.state = FunctionState::kRunning;
      Result<WorkerResult> r = ResultFromJson(*stats);
      if (r.ok()) {
        f->info.wall_seconds = r->wall_seconds;
        f->info.peak_rss_bytes = r->peak_rss_bytes;
        if (r->end_reason != "running") {
          f->info.output = *stats;
          f->info.exit_code = r->end_reason.rfind("error", 0) == 0 ? 1 : 0;
          const FunctionState s = r->end_reason == "killed"              ? FunctionState::kKilled
                                  : r->end_reason.rfind("error", 0) == 0 ? FunctionState::kFailed
                                                                         : FunctionState::kSucceeded;
          End(f, s, r->end_reason);
          return;
        }
      }
    }
    if (f->kill_requested && now - f->kill_at > o_.kill_grace) {
      End(f, FunctionState::kKilled, "killed (no final report within the grace period)");
    } else if (!f->claimed && now - f->invoked_at > o_.start_timeout) {
      f->kill_requested = true;  // a late start exits at once
      f->kill_at = now;
      End(f, FunctionState::kFailed,
          "lost: did not start within " + std::to_string(o_.start_timeout.count() / 1000) +
              " s of its invocation");
    } else if (f->claimed && now - f->last_beat > o_.heartbeat_timeout) {
      f->kill_requested = true;
      f->kill_at = now;
      End(f, FunctionState::kFailed,
          "lost: no heartbeat for " + std::to_string(o_.heartbeat_timeout.count() / 1000) + " s");
    }
  }

  void Monitor() {
    for (;;) {
      std::vector<std::pair<uint64_t, std::string>> to_invoke;
      bool closing = false;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait_for(l, o_.poll_interval);
        closing = closing_;
        if (closing) {
          bool pending_kills = false;
          for (auto& [id, f] : fns_) pending_kills |= f.invoked && !f.kill_written && f.kill_requested;
          if (!pending_kills) return;
        }
        uint32_t in_flight = 0;
        for (auto& [id, f] : fns_) in_flight += f.invoked && !IsTerminal(f.info.state);
        const Clock::time_point now = Clock::now();
        for (auto& [id, f] : fns_) {
          if (closing_ || in_flight >= o_.max_concurrency) break;
          if (!f.invoked && !IsTerminal(f.info.state) && f.next_attempt <= now) {
            to_invoke.emplace_back(id, f.event);
            ++in_flight;
          }
        }
      }
      for (auto& [id, event] : to_invoke) SendInvocation(id, event);
      PollStates();
      if (closing) return;  // kill keys written once
    }
  }

  const LambdaBackendOptions o_;
  std::unique_ptr<aws::LambdaApi> api_;
  std::map<std::string, std::unique_ptr<PsClient>> kv_;  // monitor thread only
  std::mt19937_64 rng_{std::random_device{}()};           // GUARDED_BY(mu_)
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Fn> fns_;  // GUARDED_BY(mu_)
  // Function ids start at a random multiple of 2^20, so functions of two
  // backends in one job (a driver that resumed it) never share their keys.
  uint64_t next_id_ = (std::random_device{}() % (uint64_t{1} << 31)) * (uint64_t{1} << 20) + 1;  // GUARDED_BY(mu_)
  bool closing_ = false;        // GUARDED_BY(mu_)
  std::thread monitor_;
};

}  // namespace

Result<std::unique_ptr<ComputeBackend>> MakeLambdaBackend(LambdaBackendOptions options) {
  if (options.function.empty()) {
    return Status::InvalidArgument("lambda backend: setting 'function' (the Lambda function's "
                                   "name or ARN) is required");
  }
  auto b = std::make_unique<LambdaBackend>(std::move(options));
  VIRGA_RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<ComputeBackend>(std::move(b));
}

}  // namespace virga
