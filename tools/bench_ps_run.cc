// One measured cell of `virga bench ps`: start fresh servers (virga or
// Redis), run N `bench ps-client` processes over a common window, read the
// servers' CPU time from /proc at the window's edges, merge the latencies.
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tools/bench_ps.h"
#include "tools/token.h"
#include "virga/ps_client.h"

namespace virga::cli::benchps {
namespace {

constexpr int64_t kWarmupNs = 600'000'000;  // exec + connect + warm-up before the window

void SleepUntil(int64_t ns) {
  const int64_t now = NowNs();
  if (ns > now) std::this_thread::sleep_for(std::chrono::nanoseconds(ns - now));
}

std::string Fresh(const std::string& path) {
  std::filesystem::remove(path);
  return path;
}

double ServersCpu(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t p : pids) {
    const double s = CpuSeconds(p);
    if (s < 0) return -1;
    total += s;
  }
  return total;
}

double Percentile(std::vector<float>& v, double q) {
  if (v.empty()) return 0;
  auto it = v.begin() + static_cast<ptrdiff_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), it, v.end());
  return *it;
}

// `target` selects the system: {"--servers", list, "--token-file", f} or {"--redis", addr}.
Measure RunClients(const Env& env, const Cell& cell, const std::vector<std::string>& target,
                   const std::vector<pid_t>& server_pids) {
  Measure m;
  const int64_t start = NowNs() + kWarmupNs;
  const int64_t end = start + static_cast<int64_t>(env.seconds * 1e9);
  std::vector<pid_t> pids;
  for (int i = 0; i < cell.clients; ++i) {
    std::vector<std::string> argv = {env.self,
                                     "bench",
                                     "ps-client",
                                     "--keys",
                                     std::to_string(cell.keys),
                                     "--width",
                                     std::to_string(cell.width),
                                     "--seed",
                                     std::to_string(i + 1),
                                     "--start-ns",
                                     std::to_string(start),
                                     "--end-ns",
                                     std::to_string(end),
                                     "--lat-out",
                                     Fresh(fmt::format("{}/lat-{}.bin", env.dir, i))};
    argv.insert(argv.end(), target.begin(), target.end());
    if (env.pipeline) argv.push_back("--pipeline");
    pids.push_back(Spawn(argv, cell.same_cpu, Fresh(fmt::format("{}/client-{}.out", env.dir, i))));
  }
  SleepUntil(start);
  const double cpu0 = ServersCpu(server_pids);
  SleepUntil(end);
  const double cpu1 = ServersCpu(server_pids);
  if (cpu0 >= 0 && cpu1 >= 0) m.server_cpu = (cpu1 - cpu0) / env.seconds;

  double keys = 0, requests = 0, iters = 0, client_cpu = 0;
  std::vector<float> lat;
  for (int i = 0; i < cell.clients; ++i) {
    const bool exited_ok = WaitExit(pids[i], 15000);
    const std::string out = ReadFile(fmt::format("{}/client-{}.out", env.dir, i));
    const size_t line = out.rfind("{\"");
    auto j =
        nlohmann::json::parse(line == std::string::npos ? "" : out.substr(line), nullptr, false);
    if (j.is_discarded() || !exited_ok || !j["error"].get<std::string>().empty()) {
      if (m.error.empty())
        m.error =
            fmt::format("client {}: {}", i,
                        j.is_discarded() ? out.substr(0, 300) : j["error"].get<std::string>());
      if (j.is_discarded()) continue;
    }
    keys += j["keys"].get<double>();
    requests += j["requests"].get<double>();
    iters += j["iters"].get<double>();
    client_cpu += j.value("cpu_s", 0.0);
    const std::string raw = ReadFile(fmt::format("{}/lat-{}.bin", env.dir, i));
    const size_t n = raw.size() / sizeof(float);
    lat.resize(lat.size() + n);
    std::memcpy(lat.data() + lat.size() - n, raw.data(), n * sizeof(float));
  }
  m.ok = m.error.empty() && iters > 0;
  m.keys_per_s = keys / env.seconds;
  m.requests_per_s = requests / env.seconds;
  m.iters_per_s = iters / env.seconds;
  m.client_cpu = client_cpu / env.seconds;
  m.p50_us = Percentile(lat, 0.50);
  m.p99_us = Percentile(lat, 0.99);
  return m;
}

// Waits for "listening on HOST:PORT" in a server's log; 0 on timeout or exit.
uint16_t WaitListening(const std::string& log, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    const std::string text = ReadFile(log);
    const size_t at = text.find("listening on ");
    if (at != std::string::npos) {
      const size_t space = text.find(' ', at + 13), colon = text.rfind(':', space);
      if (space != std::string::npos && colon != std::string::npos && colon > at)
        return static_cast<uint16_t>(std::stoul(text.substr(colon + 1, space - colon - 1)));
    }
    usleep(10000);
  }
  return 0;
}

// Every cell measures warm tables: the whole key pool is written before the
// clients start, so no row is created (and no table grows) in the window.
constexpr uint32_t kPrefillChunk = 16384;

Status PrefillVirga(PsClient& c, const std::string& table, uint32_t width) {
  std::vector<uint64_t> keys(kPrefillChunk);
  const std::vector<float> zeros(size_t{kPrefillChunk} * width, 0.0f);
  for (uint32_t at = 0; at < kPoolKeys; at += kPrefillChunk) {
    for (uint32_t i = 0; i < kPrefillChunk; ++i) keys[i] = PoolKey(at + i);
    VIRGA_RETURN_IF_ERROR(c.Push(table, keys, zeros));
  }
  return Status::OK();
}

std::string PrefillRedis(redisContext* ctx, const std::string& hash, uint32_t width) {
  std::vector<uint64_t> keys(kPrefillChunk);
  const std::string zeros(width * sizeof(float), '\0');
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (uint32_t at = 0; at < kPoolKeys; at += kPrefillChunk) {
    argv.assign({"HSET", hash.c_str()});
    lens.assign({4, hash.size()});
    for (uint32_t i = 0; i < kPrefillChunk; ++i) {
      keys[i] = PoolKey(at + i);
      argv.push_back(reinterpret_cast<const char*>(&keys[i]));
      lens.push_back(sizeof(uint64_t));
      argv.push_back(zeros.data());
      lens.push_back(zeros.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) return std::string("redis prefill: ") + ctx->errstr;
    const bool error = r->type == REDIS_REPLY_ERROR;
    const std::string text = error ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    if (error) return "redis prefill: " + text;
  }
  return "";
}

}  // namespace

Measure RunVirgaCell(const Env& env, const Cell& cell) {
  Measure m;
  std::vector<pid_t> pids;
  std::string servers;
  for (int i = 0; i < cell.servers; ++i) {
    const std::string log = Fresh(fmt::format("{}/server-{}.log", env.dir, i));
    std::vector<std::string> argv = {env.self, "server", "--port", "0", "--token-file",
                                     env.token_file, "--threads", std::to_string(cell.server_threads)};
    if (env.tls)
      argv.insert(argv.end(), {"--tls-cert", env.dir + "/tls.pem", "--tls-key", env.dir + "/tls.key"});
    pids.push_back(Spawn(argv, cell.same_cpu, log));
    const uint16_t port = WaitListening(log, 5000);
    if (port == 0) {
      m.error = "virga server did not start: " + ReadFile(log).substr(0, 300);
      break;
    }
    servers += (servers.empty() ? "" : ",") + fmt::format("127.0.0.1:{}", port);
  }
  if (m.error.empty()) {
    PsClientOptions o;
    o.servers = *ParseServerList(servers);
    auto token = LoadToken(env.token_file, false);
    o.token = token.ok() ? *token : "";
    if (env.tls) o.tls_ca_pem = ReadFile(env.dir + "/tls.pem");
    TableConfig t;
    t.name = "bench";
    t.width = cell.width;
    auto kind = ParseOptimizerName(cell.optimizer);
    t.optimizer.kind = kind.ok() ? *kind : OptimizerKind::kAdagrad;
    auto c = PsClient::Connect(o);
    Status s = !kind.ok() ? kind.status() : c.ok() ? (*c)->CreateTable(t) : c.status();
    if (!s.ok()) m.error = "create table: " + s.ToString();
    if (s.ok()) s = PrefillVirga(**c, t.name, t.width);
    if (m.error.empty() && !s.ok()) m.error = "prefill: " + s.ToString();
  }
  std::vector<std::string> target = {"--servers", servers, "--token-file", env.token_file};
  if (env.tls) target.insert(target.end(), {"--tls-ca", env.dir + "/tls.pem"});
  if (m.error.empty()) m = RunClients(env, cell, target, pids);
  for (pid_t p : pids) Stop(p);
  return m;
}

Measure RunRedisCell(const Env& env, const Cell& cell) {
  Measure m;
  const uint16_t port = FreePort();
  const std::string log = Fresh(env.dir + "/redis.log");
  pid_t pid =
      Spawn({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"},
            cell.same_cpu, log);
  bool up = false;
  std::string prefill;
  for (int waited = 0; waited < 5000 && !up; waited += 20) {
    if (redisContext* ctx = redisConnect("127.0.0.1", port); ctx) {
      if (!ctx->err)
        if (auto* r = static_cast<redisReply*>(redisCommand(ctx, "PING")))
          up = true, freeReplyObject(r);
      if (up) prefill = PrefillRedis(ctx, "bench", cell.width);
      redisFree(ctx);
    }
    if (!up) usleep(20000);
  }
  if (!up)
    m.error = "redis-server did not start: " + ReadFile(log).substr(0, 300);
  else if (!prefill.empty())
    m.error = prefill;
  else
    m = RunClients(env, cell, {"--redis", fmt::format("127.0.0.1:{}", port)}, {pid});
  Stop(pid);
  return m;
}

}  // namespace virga::cli::benchps
