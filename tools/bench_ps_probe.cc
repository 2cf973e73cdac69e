// `virga bench ps-train-probe` (hidden): the client of tests/ps_crash_test.sh.
//
// Trains table "t" (sparse, width 1, adagrad lr 0.1) on keys 0..63; every
// push carries all 64 keys with the fixed gradient g_k = +-(1 + k/64). A
// row's weight after n pushes is then a known, strictly monotonic function of
// n (replayed here with the server's own kernel, virga::ApplyGradient), so
// the weight says exactly how many pushes the row has absorbed: a restored
// row that matches no push count, or a count outside [version, pushes sent],
// is not a state the checkpoint could have held. Continuing training checks
// the optimizer state too: after P more pushes each row must sit at n + P.
//
// Output lines (stdout, flushed): "progress pushes_sent=N", then
// "before version=V rows=R pushes_per_row=[a,b] sum=S" and
// "after version=V pushes=P sum=S", "FAIL: ..." for each failed check.
// Exit 0 all checks passed, 1 a check failed, 3 the server failed mid-run
// (the last line is then "pushes_sent=N").
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "tools/bench_ps.h"
#include "tools/token.h"
#include "virga/ps_client.h"

namespace virga::cli::benchps {
namespace {

constexpr size_t kProbeKeys = 64;
constexpr const char* kTable = "t";

TableConfig ProbeTable() {
  TableConfig c;
  c.name = kTable;
  c.optimizer.kind = OptimizerKind::kAdagrad;
  c.optimizer.learning_rate = 0.1f;
  return c;
}

// The push count n in [0, max_n] at which each key's replayed weight equals
// w[k] bit for bit (the replay runs the server's kernel on the same floats),
// -1 where none does. The trajectory is strictly monotonic, so n is unique.
std::vector<int64_t> PushCounts(uint64_t max_n, std::span<const float> g,
                                std::span<const float> w) {
  const OptimizerConfig oc = ProbeTable().optimizer;
  std::vector<float> sim(kProbeKeys, 0.0f), state(kProbeKeys * OptimizerStateWidth(oc.kind));
  InitOptimizerState(oc, state);
  std::vector<int64_t> n(kProbeKeys, -1);
  for (uint64_t step = 0;; ++step) {
    for (size_t k = 0; k < kProbeKeys; ++k)
      if (n[k] < 0 && sim[k] == w[k]) n[k] = static_cast<int64_t>(step);
    if (step == max_n) break;
    ApplyGradient(oc, ScheduledLearningRate(oc, step), sim, state, g);
  }
  return n;
}

double Sum(PsClient& c) {
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  if (!c.DumpTable(kTable, &rows).ok()) return 0;
  double s = 0;
  for (const auto& [k, r] : rows) s += r[0];
  return s;
}

}  // namespace

int RunTrainProbe(const ProbeArgs& a) {
  auto fail = [](const std::string& what) {
    std::printf("FAIL: %s\n", what.c_str());
    return 1;
  };
  auto list = ParseServerList(a.servers);
  auto token = LoadToken(a.token_file, false);
  if (!list.ok() || !token.ok()) return fail("bad --servers or token");
  PsClientOptions o;
  o.servers = *list;
  o.token = *token;
  o.call_timeout = std::chrono::milliseconds(3000);
  auto conn = PsClient::Connect(o);
  if (!conn.ok()) return fail("connect: " + conn.status().ToString());
  PsClient& c = **conn;
  if (Status s = c.CreateTable(ProbeTable()); !s.ok() && s.code() != Status::Code::kAlreadyExists)
    return fail("create table: " + s.ToString());

  std::vector<uint64_t> keys(kProbeKeys);
  std::vector<float> g(kProbeKeys), w(kProbeKeys);
  for (size_t k = 0; k < kProbeKeys; ++k) {
    keys[k] = k;
    g[k] = (k & 1 ? -1.0f : 1.0f) * (1.0f + static_cast<float>(k) / kProbeKeys);
  }
  uint64_t v0 = 0;
  if (Status s = c.Pull(kTable, keys, w, &v0); !s.ok()) return fail("pull: " + s.ToString());
  const uint64_t upper = a.max_prior > 0 ? a.max_prior : v0;
  const std::vector<int64_t> n0 = PushCounts(upper, g, w);
  const auto [lo, hi] = std::minmax_element(n0.begin(), n0.end());
  std::printf("before version=%llu rows=%zu pushes_per_row=[%lld,%lld] sum=%.6f\n",
              static_cast<unsigned long long>(v0), kProbeKeys, static_cast<long long>(*lo),
              static_cast<long long>(*hi), Sum(c));
  int rc = 0;
  if (a.max_prior > 0 && v0 == 0) rc = fail("restored table has version 0");
  if (v0 > upper)
    rc = fail("version " + std::to_string(v0) + " > pushes sent " + std::to_string(upper));
  if (*lo < 0)
    rc = fail("a row's weight matches no push count in [0," + std::to_string(upper) + "]");
  else if (static_cast<uint64_t>(*lo) < v0)
    rc = fail("a row has absorbed " + std::to_string(*lo) + " pushes, fewer than the version " +
              std::to_string(v0));
  std::fflush(stdout);

  uint64_t sent = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::duration<double>(a.seconds));
  auto last = start;
  while (std::chrono::steady_clock::now() < end) {
    ++sent;
    if (Status s = c.Push(kTable, keys, g); !s.ok()) {
      std::printf("error: %s\npushes_sent=%llu\n", s.ToString().c_str(),
                  static_cast<unsigned long long>(sent));
      return 3;
    }
    if (auto now = std::chrono::steady_clock::now(); now - last > std::chrono::milliseconds(100)) {
      last = now;
      std::printf("progress pushes_sent=%llu\n", static_cast<unsigned long long>(sent));
      std::fflush(stdout);
    }
  }
  uint64_t v1 = 0;
  if (Status s = c.Pull(kTable, keys, w, &v1); !s.ok())
    return fail("pull after training: " + s.ToString());
  std::printf("after version=%llu pushes=%llu sum=%.6f\n", static_cast<unsigned long long>(v1),
              static_cast<unsigned long long>(sent), Sum(c));
  if (v1 != v0 + sent)
    rc = fail("version " + std::to_string(v1) + " != " + std::to_string(v0 + sent));
  const std::vector<int64_t> n1 =
      PushCounts(static_cast<uint64_t>(std::max<int64_t>(*hi, 0)) + sent, g, w);
  for (size_t k = 0; k < kProbeKeys; ++k) {
    if (n0[k] >= 0 && n1[k] != n0[k] + static_cast<int64_t>(sent)) {
      rc = fail("key " + std::to_string(k) + " at push count " + std::to_string(n1[k]) +
                ", expected " + std::to_string(n0[k] + static_cast<int64_t>(sent)) +
                " (optimizer state not restored?)");
      break;
    }
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace virga::cli::benchps
