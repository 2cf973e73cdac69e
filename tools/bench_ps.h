// Internals of `virga bench ps` shared by its source files:
//   cmd_bench_ps.cc        the driver (servers, cells, table, JSON) and registration
//   bench_ps_proc.cc       child processes: spawn (optionally pinned), CPU time, free ports
//   bench_ps_client.cc     the hidden `bench ps-client` load generator (virga or Redis)
//   bench_ps_probe.cc      the hidden `bench ps-train-probe` (tests/ps_crash_test.sh)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace virga::cli::benchps {

// The key pool every client draws from: kPoolKeys hashed 64-bit keys,
// PoolKey(slot) for slot < kPoolKeys (like Criteo's hashed features).
constexpr uint32_t kPoolBits = 20;
constexpr uint32_t kPoolKeys = 1u << kPoolBits;
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline uint64_t PoolKey(uint32_t slot) { return SplitMix64(slot); }

// One load-generating client process. It loops: pick `keys` distinct keys at
// random from a fixed pool of 2^20 hashed 64-bit keys, pull them, compute a
// gradient from the weights, push it; iterations that start inside
// [start_ns, end_ns) of CLOCK_MONOTONIC are measured, earlier ones warm up.
struct ClientArgs {
  std::string servers;     // virga "h:p[,h:p]"; empty when `redis` is set
  std::string token_file;  // virga shared secret
  std::string tls_ca;      // PEM file: connect over TLS, verifying against it
  std::string redis;       // "h:p": run the same workload against Redis instead
  std::string table = "bench";
  uint32_t keys = 470;                // K distinct keys per iteration
  uint32_t width = 1;                 // floats per key (1: linear model; k: factorization model)
  std::string optimizer = "adagrad";  // of the table a client run by hand creates
  uint64_t seed = 1;                  // this client's key-selection stream
  int64_t start_ns = 0, end_ns = 0;
  bool pipeline = false;  // send push(i) and pull(i+1) together (one round trip per iteration)
  std::string lat_out;    // binary float microseconds, one per measured iteration
};
// Prints one JSON line {"iters","keys","requests","cpu_s","error"} on stdout;
// cpu_s is this process's CPU time over the measured window.
int RunClient(const ClientArgs& a);

// The crash/restore probe: trains table "t" (sparse, width 1, adagrad) on
// kProbeKeys keys with a fixed gradient per key, so the weight of a row
// identifies how many pushes it has absorbed. See bench_ps_probe.cc.
struct ProbeArgs {
  std::string servers;
  std::string token_file;
  double seconds = 3;
  // > 0: the table was restored from a checkpoint taken while at most this
  // many pushes had been sent; every row must sit at a push count in
  // [restored version, max_prior]. 0: no restore; rows must sit at the version.
  uint64_t max_prior = 0;
};
int RunTrainProbe(const ProbeArgs& a);

// --- one measured cell (bench_ps_run.cc) ---

struct Env {
  std::string self;  // this binary
  std::string dir;   // scratch: token, logs, latency files
  std::string token_file;
  double seconds = 2;  // measured window per cell
  bool pipeline = false;
  bool tls = false;  // virga over TLS: a self-signed <dir>/tls.pem (key <dir>/tls.key)
};

struct Cell {
  uint32_t keys = 470;                // K
  int clients = 1;                    // N client processes
  bool same_cpu = false;              // pin servers and clients to CPU 0
  int servers = 1;                    // virga server processes (keys spread by PsClient)
  int server_threads = 1;             // I/O threads per virga server
  uint32_t width = 1;                 // floats per key
  std::string optimizer = "adagrad";  // the virga table's optimizer
};

struct Measure {
  bool ok = false;
  std::string error;
  double keys_per_s = 0;          // keys pulled + keys pushed, summed over clients
  double requests_per_s = 0;      // RPCs / Redis commands
  double iters_per_s = 0;         // pull+push iterations
  double p50_us = 0, p99_us = 0;  // per-iteration latency over all clients
  double server_cpu = -1;  // server CPU seconds / wall seconds (summed over servers), -1 unknown
  double client_cpu = 0;   // client CPU seconds / wall seconds (summed over clients)
};

Measure RunVirgaCell(const Env& env, const Cell& cell);
Measure RunRedisCell(const Env& env, const Cell& cell);

// --- child processes (bench_ps_proc.cc) ---

int64_t NowNs();  // CLOCK_MONOTONIC, comparable across processes
// fork + exec argv with stdout and stderr to `log_path` (appending; /dev/null
// if empty); when `pin_cpu0` the child (and its threads) run on CPU 0 only.
// Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& argv, bool pin_cpu0, const std::string& log_path);
// SIGTERM, then SIGKILL after `grace_ms`; reaps. Returns the wait status.
int Stop(pid_t pid, int grace_ms = 2000);
// Waits up to `timeout_ms` for pid to exit; SIGKILLs it past that. true if it
// exited 0 on its own.
bool WaitExit(pid_t pid, int timeout_ms);
// User + system CPU seconds of a live process (/proc/<pid>/stat), -1 if unknown.
double CpuSeconds(pid_t pid);
// A loopback TCP port free right now (bound then released), 0 on failure.
uint16_t FreePort();
std::string ReadFile(const std::string& path);

}  // namespace virga::cli::benchps
