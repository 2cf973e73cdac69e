// Echo round-trip latency of RpcClient -> RpcServer, 6 KB payloads, client
// and server in one process (the benchmark thread is the client; the server
// runs its own I/O thread). Placements:
//   pinned=1  both threads on CPU 0 (sched_setaffinity before the server
//             starts; its thread inherits the mask): a context switch per hop
//   pinned=0  the scheduler's choice; on an idle 2-vCPU VM the threads land
//             on different vCPUs and each hop may pay a halted-vCPU wake-up
// srv_spin_us / cli_spin_us: ServerOptions::spin / ClientOptions::spin.
// Counters: p50_us, p99_us (per call), spin_hit_frac (server requests found
// while spinning). Run: build/src/net/bench_rpc [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "net/rpc.h"

namespace virga::net {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint8_t kOpEcho = 1;

HandlerAction Echo(const RequestContext&, const FrameHeader&, std::span<const std::byte> payload,
                   Status*, std::string* reply) {
  reply->assign(reinterpret_cast<const char*>(payload.data()), payload.size());
  return HandlerAction::kReply;
}

// Pins the calling thread (and threads it creates later) to CPU 0 or
// releases it to all CPUs; restores the previous mask on destruction.
class Placement {
 public:
  explicit Placement(bool pin_cpu0) {
    sched_getaffinity(0, sizeof(saved_), &saved_);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pin_cpu0) {
      CPU_SET(0, &set);
    } else {
      for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
    }
    sched_setaffinity(0, sizeof(set), &set);
  }
  ~Placement() { sched_setaffinity(0, sizeof(saved_), &saved_); }

 private:
  cpu_set_t saved_;
};

void BM_EchoRoundTrip6K(benchmark::State& state) {
  Placement placement(state.range(0) != 0);
  ServerOptions so;
  so.token = "bench";
  so.spin = std::chrono::microseconds(state.range(1));
  RpcServer server(so, Echo);
  if (Status s = server.Start(); !s.ok()) return state.SkipWithError(s.ToString().c_str());
  ClientOptions co;
  co.token = "bench";
  co.spin = std::chrono::microseconds(state.range(2));
  auto client = RpcClient::Connect("127.0.0.1", server.port(), co);
  if (!client.ok()) return state.SkipWithError(client.status().ToString().c_str());
  RpcClient& c = **client;

  const std::string payload(6144, 'g');
  Reply reply;
  for (int i = 0; i < 500; ++i) (void)c.Call(kOpEcho, AsBytes(payload), &reply);  // warm up
  const ServerCounters before = server.counters();
  std::vector<double> us;
  us.reserve(static_cast<size_t>(state.max_iterations));
  for (auto _ : state) {
    const auto t0 = Clock::now();
    Status s = c.Call(kOpEcho, AsBytes(payload), &reply);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!s.ok() || reply.payload.size() != payload.size())
      return state.SkipWithError(s.ToString().c_str());
  }
  const ServerCounters after = server.counters();
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
  state.counters["spin_hit_frac"] = static_cast<double>(after.spin_hits - before.spin_hits) /
                                    static_cast<double>(after.frames - before.frames);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * 6144);
}

BENCHMARK(BM_EchoRoundTrip6K)
    ->ArgNames({"pinned", "srv_spin_us", "cli_spin_us"})
    ->ArgsProduct({{1, 0}, {0, 50}, {0, 50}})
    ->Iterations(20000)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace virga::net

BENCHMARK_MAIN();
