// `virga bench ps`: parameter-server round trips against Redis, same run.
//
// For each K (keys per iteration), N (client processes) and placement
// (same_cpu: servers and clients pinned to CPU 0; default: unpinned), a fresh
// `virga server` and N clients loop pull K keys -> gradient -> push K
// gradients (adagrad table, width 1) for --seconds; then the same workload
// against a fresh redis-server (HMGET / HSET on one hash, the client applying
// w - lr g). keys/s counts keys pulled + keys pushed (2K per iteration).
// --width and --optimizer change the rows (a factorization model's rows are
// k floats). Tables are warm: the whole key pool is written before a cell.
// --servers-count 2 adds a scaling section (see Scaling below).
// Internals: tools/bench_ps.h.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tools/bench_ps.h"
#include "tools/commands.h"
#include "virga/optimizer.h"

namespace virga::cli {
namespace {

using benchps::Cell;
using benchps::Measure;

struct PsBenchArgs {
  std::vector<uint32_t> keys = {470, 2700};
  std::vector<int> clients = {1, 2, 4};
  double seconds = 2;
  int servers_count = 1;
  int server_threads = 1;
  int rounds = 1;
  int scaling_rounds = 3;
  uint32_t width = 1;
  std::string optimizer = "adagrad";
  bool pipeline = false;
  bool tls = false;
  bool no_redis = false;
  std::vector<std::string> placements = {"same_cpu", "default"};
  std::string json_out;
};

const char* Placement(const Cell& c) { return c.same_cpu ? "same_cpu" : "default"; }

std::string Cpu(double f) { return f < 0 ? "   n/a" : std::to_string(f).substr(0, 5); }

nlohmann::json Row(const Cell& c, const Measure& v, const Measure* r) {
  nlohmann::json j = {{"keys", c.keys},
                      {"clients", c.clients},
                      {"placement", Placement(c)},
                      {"servers", c.servers},
                      {"server_threads", c.server_threads},
                      {"width", c.width},
                      {"optimizer", c.optimizer},
                      {"keys_per_s", v.keys_per_s},
                      {"requests_per_s", v.requests_per_s},
                      {"iters_per_s", v.iters_per_s},
                      {"p50_us", v.p50_us},
                      {"p99_us", v.p99_us},
                      {"server_cpu_fraction", v.server_cpu},
                      {"client_cpu_fraction", v.client_cpu},
                      {"ok", v.ok},
                      {"error", v.error}};
  j["redis_keys_per_s"] = r ? nlohmann::json(r->keys_per_s) : nlohmann::json();
  j["redis_requests_per_s"] = r ? nlohmann::json(r->requests_per_s) : nlohmann::json();
  j["redis_p50_us"] = r ? nlohmann::json(r->p50_us) : nlohmann::json();
  j["redis_p99_us"] = r ? nlohmann::json(r->p99_us) : nlohmann::json();
  j["redis_cpu_fraction"] = r ? nlohmann::json(r->server_cpu) : nlohmann::json();
  j["redis_error"] = r ? r->error : "";
  j["ratio_vs_redis"] =
      r && r->keys_per_s > 0 ? nlohmann::json(v.keys_per_s / r->keys_per_s) : nlohmann::json();
  return j;
}

void PrintHeader() {
  std::printf("%5s %3s %-8s | %11s %9s %8s %8s %6s | %11s %8s %8s %6s | %6s\n", "K", "N", "place",
              "virga key/s", "req/s", "p50 us", "p99 us", "cpu", "redis key/s", "p50 us", "p99 us",
              "cpu", "ratio");
}

void PrintRow(const Cell& c, const Measure& v, const Measure* r) {
  std::printf("%5u %3d %-8s | %11.0f %9.0f %8.1f %8.1f %6s |", c.keys, c.clients, Placement(c),
              v.keys_per_s, v.requests_per_s, v.p50_us, v.p99_us, Cpu(v.server_cpu).c_str());
  if (r)
    std::printf(" %11.0f %8.1f %8.1f %6s | %5.2fx", r->keys_per_s, r->p50_us, r->p99_us,
                Cpu(r->server_cpu).c_str(), r->keys_per_s > 0 ? v.keys_per_s / r->keys_per_s : 0);
  std::printf("\n");
  if (!v.error.empty()) std::printf("      virga error: %s\n", v.error.c_str());
  if (r && !r->error.empty()) std::printf("      redis error: %s\n", r->error.c_str());
  std::fflush(stdout);
}

// The 1-minute load average: other work on the machine skews every figure.
double LoadAvg() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

bool WriteToken(const std::string& path) {
  std::random_device rd;
  std::string token;
  for (int i = 0; i < 32; ++i) token += "0123456789abcdef"[rd() & 15];
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  const bool ok = ::write(fd, token.data(), token.size()) == static_cast<ssize_t>(token.size());
  ::close(fd);
  return ok;
}

// The median run (by keys/s) of a cell's rounds, the range, and the first
// error of any round.
struct Median {
  Measure m;
  double min = 0, max = 0;
  std::string error;
};
Median MedianOf(std::vector<Measure> ms) {
  std::sort(ms.begin(), ms.end(),
            [](const Measure& a, const Measure& b) { return a.keys_per_s < b.keys_per_s; });
  Median r{ms[ms.size() / 2], ms.front().keys_per_s, ms.back().keys_per_s, ""};
  for (const Measure& x : ms)
    if (r.error.empty() && !x.error.empty()) r.error = x.error;
  if (!r.error.empty()) r.m.ok = false;
  return r;
}

// 1 server, 2 servers (keys spread by PsClient) and 1 server with 2 I/O
// threads under the same load, for two row shapes: a linear model's (width 1,
// adagrad: little server work per key) and a factorization model's (width 16,
// adam: the server's optimizer dominates). The CPU columns show where the
// bottleneck is: a server at ~1.0 CPU while the clients leave CPU spare is
// server-bound. On a small machine a figure swings with where the scheduler
// puts each process, so the configurations run `rounds` times interleaved
// and the median is reported beside the range.
nlohmann::json Scaling(const benchps::Env& env, int rounds) {
  nlohmann::json rows = nlohmann::json::array();
  const unsigned cpus = std::thread::hardware_concurrency();
  std::printf(
      "\nscaling: K=2700, 4 clients, unpinned (%u CPUs), %d interleaved rounds, median [min-max];"
      " cpu = CPU s / wall s\n",
      cpus, rounds);
  struct Shape {
    uint32_t width;
    const char* optimizer;
  };
  constexpr std::pair<int, int> kLayouts[] = {{1, 1}, {2, 1}, {1, 2}};  // servers, threads
  for (Shape shape : {Shape{1, "adagrad"}, Shape{16, "adam"}}) {
    std::printf(" rows of width %u, %s:\n", shape.width, shape.optimizer);
    std::vector<Cell> cells;
    for (auto [servers, threads] : kLayouts)
      cells.push_back({.keys = 2700,
                       .clients = 4,
                       .same_cpu = false,
                       .servers = servers,
                       .server_threads = threads,
                       .width = shape.width,
                       .optimizer = shape.optimizer});
    std::vector<std::vector<Measure>> runs(cells.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < cells.size(); ++i)
        runs[i].push_back(benchps::RunVirgaCell(env, cells[i]));
    double one = 0;
    for (size_t i = 0; i < cells.size(); ++i) {
      const Median md = MedianOf(runs[i]);
      const Measure& m = md.m;
      if (i == 0) one = m.keys_per_s;
      const double speedup = one > 0 ? m.keys_per_s / one : 0;
      std::printf(
          "  %d server(s) x %d thread(s): %10.0f keys/s [%.0f-%.0f]  p50 %7.1f us  server cpu %s"
          "  client cpu %5.3f  %.2fx of 1x1%s%s\n",
          cells[i].servers, cells[i].server_threads, m.keys_per_s, md.min, md.max, m.p50_us,
          Cpu(m.server_cpu).c_str(), m.client_cpu, speedup, md.error.empty() ? "" : "  ERROR ",
          md.error.c_str());
      nlohmann::json row = Row(cells[i], m, nullptr);
      row["rounds"] = rounds;
      row["keys_per_s_min"] = md.min;
      row["keys_per_s_max"] = md.max;
      row["speedup_vs_one_server"] = speedup;
      row["error"] = md.error;
      rows.push_back(std::move(row));
    }
  }
  std::fflush(stdout);
  return rows;
}

int BenchPs(const PsBenchArgs& a) {
  namespace fs = std::filesystem;
  char tmpl[] = "/tmp/virga-bench-ps-XXXXXX";
  if (!mkdtemp(tmpl)) return std::fprintf(stderr, "virga bench ps: mkdtemp failed\n"), 1;
  benchps::Env env;
  env.dir = tmpl;
  env.self = fs::read_symlink("/proc/self/exe").string();
  env.token_file = env.dir + "/token";
  env.seconds = a.seconds;
  env.pipeline = a.pipeline;
  if (!WriteToken(env.token_file))
    return std::fprintf(stderr, "virga bench ps: cannot write token\n"), 1;
  env.tls = a.tls;
  if (a.tls) {  // a self-signed certificate for 127.0.0.1, made by the openssl CLI
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout '" + env.dir + "/tls.key' -out '" + env.dir +
        "/tls.pem' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0)
      return std::fprintf(stderr, "virga bench ps: --tls: openssl could not make a certificate\n"), 1;
  }

  nlohmann::json out = {{"machine_cpus", std::thread::hardware_concurrency()},
                        {"seconds_per_cell", a.seconds},
                        {"pipeline", a.pipeline},
                        {"tls", a.tls},
                        {"keys_per_s_counts", "keys pulled + keys pushed (2K per iteration)"},
                        {"load_avg_1m_start", LoadAvg()},
                        {"rows", nlohmann::json::array()}};
  std::printf(
      "virga bench ps: %.1f s per cell, %s; keys/s = keys pulled + pushed; cpu = server CPU s / "
      "wall s;"
      " load average %.2f\n",
      a.seconds,
      a.pipeline ? "push(i) written with pull(i+1), one write per iteration"
                 : "pull then push, each awaited",
      LoadAvg());
  PrintHeader();
  bool failed = false;
  std::vector<Cell> cells;
  for (uint32_t k : a.keys)
    for (int n : a.clients)
      for (const std::string& place : a.placements)
        cells.push_back({.keys = k,
                         .clients = n,
                         .same_cpu = place == "same_cpu",
                         .servers = 1,
                         .server_threads = a.server_threads,
                         .width = a.width,
                         .optimizer = a.optimizer});
  // Rounds interleave the cells, so drift in the machine's load touches all
  // of them alike; each round's rows are printed as they come.
  std::vector<std::vector<Measure>> virga(cells.size()), redis(cells.size());
  for (int round = 0; round < a.rounds; ++round) {
    if (a.rounds > 1) std::printf("round %d of %d\n", round + 1, a.rounds);
    for (size_t i = 0; i < cells.size(); ++i) {
      virga[i].push_back(benchps::RunVirgaCell(env, cells[i]));
      if (!a.no_redis) redis[i].push_back(benchps::RunRedisCell(env, cells[i]));
      PrintRow(cells[i], virga[i].back(), a.no_redis ? nullptr : &redis[i].back());
    }
  }
  if (a.rounds > 1) std::printf("median of %d rounds (by keys/s, each system apart):\n", a.rounds);
  if (a.rounds > 1) PrintHeader();
  for (size_t i = 0; i < cells.size(); ++i) {
    const Median v = MedianOf(virga[i]);
    const Median r = a.no_redis ? Median{} : MedianOf(redis[i]);
    if (a.rounds > 1) PrintRow(cells[i], v.m, a.no_redis ? nullptr : &r.m);
    failed = failed || !v.m.ok || (!a.no_redis && !r.m.ok);
    nlohmann::json row = Row(cells[i], v.m, a.no_redis ? nullptr : &r.m);
    row["rounds"] = a.rounds;
    row["error"] = v.error;
    row["keys_per_s_min"] = v.min;
    row["keys_per_s_max"] = v.max;
    auto [p50_min, p50_max] = std::minmax_element(
        virga[i].begin(), virga[i].end(),
        [](const Measure& x, const Measure& y) { return x.p50_us < y.p50_us; });
    row["p50_us_min"] = p50_min->p50_us;
    row["p50_us_max"] = p50_max->p50_us;
    if (!a.no_redis) {
      row["redis_error"] = r.error;
      row["redis_keys_per_s_min"] = r.min;
      row["redis_keys_per_s_max"] = r.max;
    }
    out["rows"].push_back(std::move(row));
  }
  if (a.servers_count >= 2) {
    out["scaling"] = Scaling(env, a.scaling_rounds);
    for (const auto& row : out["scaling"]) failed = failed || !row["ok"].get<bool>();
  }
  out["load_avg_1m_end"] = LoadAvg();
  std::printf("load average at the end: %.2f\n", LoadAvg());
  if (!a.json_out.empty()) std::ofstream(a.json_out) << out.dump(2) << "\n";
  fs::remove_all(env.dir);
  if (failed) std::fprintf(stderr, "virga bench ps: some cells failed (errors above)\n");
  return failed ? 1 : 0;
}

}  // namespace

void RegisterBenchPs(CLI::App& bench, int* exit_code) {
  auto a = std::make_shared<PsBenchArgs>();
  auto* ps = bench.add_subcommand("ps", "Parameter-server pull/push round trips vs Redis");
  ps->add_option("--keys", a->keys, "Keys per iteration (K), comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  ps->add_option("--clients", a->clients, "Client processes (N), comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  ps->add_option("--seconds", a->seconds, "Measured seconds per cell")->capture_default_str();
  ps->add_option("--servers-count", a->servers_count,
                 "2: also compare 1 vs 2 servers (K=2700, 4 clients, two row shapes)")
      ->check(CLI::Range(1, 2))
      ->capture_default_str();
  ps->add_option("--rounds", a->rounds,
                 "Interleaved rounds of the matrix (medians reported when > 1)")
      ->check(CLI::Range(1, 99))
      ->capture_default_str();
  ps->add_option("--scaling-rounds", a->scaling_rounds,
                 "Interleaved rounds of the scaling section (median reported)")
      ->check(CLI::Range(1, 99))
      ->capture_default_str();
  ps->add_option("--server-threads", a->server_threads, "I/O threads of the virga server")
      ->capture_default_str();
  ps->add_option("--width", a->width, "Floats per key (1: linear model, k: factorization model)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  ps->add_option("--optimizer", a->optimizer, "Optimizer of the virga table")
      ->check(CLI::Validator(
          [](std::string& s) {
            return ParseOptimizerName(s).ok() ? std::string() : "unknown optimizer " + s;
          },
          "OPTIMIZER"))
      ->capture_default_str();
  ps->add_flag("--pipeline", a->pipeline, "Send push(i) with pull(i+1) (both systems)");
  ps->add_flag("--tls", a->tls, "virga over TLS (a self-signed certificate; Redis stays plain)");
  ps->add_flag("--no-redis", a->no_redis, "Skip the Redis comparison");
  ps->add_option("--placements", a->placements, "Placements to measure, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"same_cpu", "default"}))
      ->capture_default_str();
  ps->add_option("--json-out", a->json_out, "Write every row as JSON");
  ps->callback([a, exit_code] { *exit_code = BenchPs(*a); });

  auto c = std::make_shared<benchps::ClientArgs>();
  auto* client = bench.add_subcommand("ps-client", "")->group("");  // hidden: a load process
  client->add_option("--servers", c->servers);
  client->add_option("--token-file", c->token_file);
  client->add_option("--tls-ca", c->tls_ca);
  client->add_option("--redis", c->redis);
  client->add_option("--keys", c->keys);
  client->add_option("--width", c->width);
  client->add_option("--optimizer", c->optimizer);
  client->add_option("--seed", c->seed);
  client->add_option("--start-ns", c->start_ns);
  client->add_option("--end-ns", c->end_ns);
  client->add_option("--lat-out", c->lat_out);
  client->add_flag("--pipeline", c->pipeline);
  client->callback([c, exit_code] { *exit_code = benchps::RunClient(*c); });

  auto p = std::make_shared<benchps::ProbeArgs>();
  auto* probe =
      bench.add_subcommand("ps-train-probe", "")->group("");  // hidden: tests/ps_crash_test.sh
  probe->add_option("--servers", p->servers)->required();
  probe->add_option("--token-file", p->token_file);
  probe->add_option("--seconds", p->seconds);
  probe->add_option("--max-prior", p->max_prior,
                    "Pushes sent before the crash (checks a restored table)");
  probe->callback([p, exit_code] { *exit_code = benchps::RunTrainProbe(*p); });
}

}  // namespace virga::cli
