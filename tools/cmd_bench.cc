// `virga bench ingest`: parse+write throughput of LIBSVM and Criteo ingest,
// measured side by side in one run against scikit-learn's load_svmlight_file
// on the same file, plus peak memory of each ingest.
//
// Each ingest runs as a child process (`virga ingest`), so its wall time, CPU
// time and peak RSS (wait4) are its own. "one core" runs pin the child, writer
// threads included, to CPU 0 (sklearn too); "default" lets the OS place it on
// both cores. CPU seconds (user + sys) show the cost when other load on the
// machine inflates wall times.
//
// A stage pass then runs the LIBSVM ingest's stages one after another in
// this process, on CPU 0, and prints the CPU time of each (read, parse+split,
// statistics, encode, put, manifest) and its share: what the pipelined ingest
// overlaps, hence which stage bounds it.
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ingest/stage_profile.h"  // internal: the stage pass measures inside the ingest
#include "tools/commands.h"
#include "virga/datagen.h"
#include "virga/ingest.h"
#include "virga/object_store.h"
#include "virga/text_writer.h"

namespace virga::cli {
namespace {

struct RunResult {
  bool ok = false;
  double seconds = 0;
  double cpu_seconds = 0;  // user + sys
  long max_rss_kb = 0;
  std::string out;
};

double Seconds(const struct timeval& tv) { return tv.tv_sec + tv.tv_usec * 1e-6; }

void PinToCpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof set, &set);
}

// Runs argv with stdout captured; pins to CPU 0 when `pin`.
RunResult RunChild(const std::vector<std::string>& argv, bool pin) {
  RunResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    if (pin) PinToCpu0();
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) r.out.append(buf, n);
  close(fds[0]);
  int wstatus = 0;
  struct rusage ru {};
  wait4(pid, &wstatus, 0, &ru);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.cpu_seconds = Seconds(ru.ru_utime) + Seconds(ru.ru_stime);
  r.max_rss_kb = ru.ru_maxrss;
  r.ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  return r;
}

// A LIBSVM file of real-valued sparse rows (about 40 features, sorted
// indices below 2^20, 6 significant digits), like text-classification data.
Status WriteLibsvm(const std::string& path, uint64_t target_bytes, uint64_t seed) {
  VIRGA_ASSIGN_OR_RETURN(auto w, TextWriter::Open(path));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> nfeat(20, 60);
  std::uniform_real_distribution<double> val(0.0, 1.0);
  std::string line;
  std::vector<uint32_t> idx;
  while (w->bytes_written() < target_bytes) {
    line.clear();
    line += rng() & 1 ? "+1" : "-1";
    idx.resize(nfeat(rng));
    for (auto& i : idx) i = 1 + (rng() & ((1u << 20) - 1));
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    for (uint32_t i : idx) fmt::format_to(std::back_inserter(line), " {}:{:.6g}", i, val(rng));
    line += '\n';
    VIRGA_RETURN_IF_ERROR(w->Write(line));
  }
  return w->Close();
}

// Prints the stages of the LIBSVM ingest run one by one on this thread;
// `pipelined_cpu` is what the one-core ingest spent in all.
nlohmann::json PrintStages(const ingest_internal::StageProfile& p, double pipelined_cpu) {
  const double sum = p.cpu();
  auto pct = [sum](const ingest_internal::StageCost& c) { return sum > 0 ? 100 * c.cpu / sum : 0; };
  std::printf(
      "  LIBSVM ingest stages one by one on one core, CPU s (share): read %.2f (%.0f%%), "
      "parse+split %.2f (%.0f%%),\n    stats %.2f (%.0f%%), encode %.2f (%.0f%%), "
      "put %.2f (%.0f%%, %.2f s wall), manifest %.2f (%.0f%%, %.2f s wall);\n"
      "    sum %.2f CPU s, %.2f s wall (pipelined one_core ingest: %.2f CPU s)\n",
      p.read.cpu, pct(p.read), p.parse.cpu, pct(p.parse), p.stats.cpu, pct(p.stats), p.encode.cpu,
      pct(p.encode), p.put.cpu, pct(p.put), p.put.wall, p.manifest.cpu, pct(p.manifest),
      p.manifest.wall, sum,
      p.read.wall + p.parse.wall + p.stats.wall + p.encode.wall + p.put.wall + p.manifest.wall,
      pipelined_cpu);
  nlohmann::json j;
  for (auto [name, c] : {std::pair{"read", p.read}, {"parse", p.parse}, {"stats", p.stats},
                         {"encode", p.encode}, {"put", p.put}, {"manifest", p.manifest}}) {
    j[name] = {{"cpu_s", c.cpu}, {"wall_s", c.wall}};
  }
  return j;
}

// Runs the stage pass over `libsvm` on CPU 0 and prints it; null on failure.
nlohmann::json StagePass(const std::string& libsvm, const std::string& dir, double pipelined_cpu) {
  cpu_set_t was;
  sched_getaffinity(0, sizeof was, &was);
  PinToCpu0();
  IngestOptions o;
  o.inputs = {libsvm};
  o.dataset = "stages";
  o.test_fraction = 0.1;
  auto store = ObjectStore::Open("file://" + dir + "/stage-store");
  auto stages = store.ok() ? ingest_internal::ProfileStages(**store, o)
                           : Result<ingest_internal::StageProfile>(store.status());
  sched_setaffinity(0, sizeof was, &was);
  std::filesystem::remove_all(dir + "/stage-store");
  if (!stages.ok()) {
    std::printf("  stage pass failed: %s\n", stages.status().ToString().c_str());
    return nullptr;
  }
  return PrintStages(*stages, pipelined_cpu);
}

struct BenchArgs {
  double libsvm_mb = 200;
  uint64_t criteo_rows = 1000000;
  std::string dir;
  std::string json_out;
  bool keep = false;
  bool no_sklearn = false;
};

double FileMb(const std::string& path) { return std::filesystem::file_size(path) / 1e6; }

int BenchIngest(const BenchArgs& a) {
  namespace fs = std::filesystem;
  std::string dir = a.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/virga-bench-XXXXXX";
    if (!mkdtemp(tmpl)) return std::fprintf(stderr, "virga bench: mkdtemp failed\n"), 1;
    dir = tmpl;
  }
  fs::create_directories(dir);
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string libsvm = dir + "/bench.libsvm", criteo = dir + "/bench.criteo.tsv";
  nlohmann::json out;
  out["machine_cpus"] = std::thread::hardware_concurrency();

  std::printf("generating %.0f MB of LIBSVM and %llu Criteo rows in %s ...\n", a.libsvm_mb,
              static_cast<unsigned long long>(a.criteo_rows), dir.c_str());
  if (Status s = WriteLibsvm(libsvm, static_cast<uint64_t>(a.libsvm_mb * 1e6), 7); !s.ok())
    return std::fprintf(stderr, "virga bench: %s\n", s.ToString().c_str()), 1;
  CriteoGenOptions g;
  g.rows = a.criteo_rows;
  g.out_path = criteo;
  if (auto r = GenerateCriteo(g); !r.ok())
    return std::fprintf(stderr, "virga bench: %s\n", r.status().ToString().c_str()), 1;

  int run = 0;
  const std::string store_dir = dir + "/store";
  fs::remove_all(store_dir);  // the datasets of an earlier --keep run in this --dir
  auto ingest = [&](const std::string& format, const std::string& path, bool pin) {
    RunResult r = RunChild(
        {self, "ingest", "--format", format, "--input", path, "--store", "file://" + store_dir,
         "--dataset", fmt::format("b{}", run++), "--test-fraction", "0.1"},
        pin);
    const double mb = FileMb(path);
    unsigned long long rows = 0;
    (void)std::sscanf(r.out.c_str(), "ingested %*s %llu rows", &rows);
    nlohmann::json j = {{"format", format}, {"placement", pin ? "one_core" : "default"},
                        {"input_mb", mb}, {"seconds", r.seconds}, {"mb_per_s", mb / r.seconds},
                        {"cpu_seconds", r.cpu_seconds}, {"rows", rows},
                        {"rows_per_s", rows / r.seconds}, {"peak_rss_mb", r.max_rss_kb / 1024.0},
                        {"ok", r.ok}};
    std::printf("  virga ingest %-6s %-8s: %7.1f MB in %6.2f s = %7.1f MB/s, %5.2f Mrows/s, "
                "%5.2f CPU s, peak RSS %6.1f MB%s\n",
                format.c_str(), pin ? "one_core" : "default", mb, r.seconds, mb / r.seconds,
                rows / r.seconds / 1e6, r.cpu_seconds, r.max_rss_kb / 1024.0,
                r.ok ? "" : "  FAILED");
    return j;
  };
  out["virga"] = nlohmann::json::array();
  for (bool pin : {true, false}) {
    out["virga"].push_back(ingest("libsvm", libsvm, pin));
    out["virga"].push_back(ingest("criteo", criteo, pin));
  }
  if (auto stages = StagePass(libsvm, dir, out["virga"][0]["cpu_seconds"].get<double>());
      !stages.is_null()) {
    out["libsvm_stages"] = stages;
  }
  if (!a.no_sklearn) {
    const char* script =
        "import sys, time\n"
        "from sklearn.datasets import load_svmlight_file\n"
        "t = time.perf_counter()\n"
        "X, y = load_svmlight_file(sys.argv[1])\n"
        "print(time.perf_counter() - t, X.shape[0], X.nnz)\n";
    RunResult r = RunChild({"/usr/bin/python3", "-c", script, libsvm}, true);
    double secs = 0;
    if (r.ok && std::sscanf(r.out.c_str(), "%lf", &secs) == 1 && secs > 0) {
      const double mb = FileMb(libsvm), sk = mb / secs;
      const double ours = out["virga"][0]["mb_per_s"].get<double>();
      std::printf("  sklearn load_svmlight_file one_core: %7.1f MB in %6.2f s = %7.1f MB/s "
                  "(load only, no write)\n", mb, secs, sk);
      std::printf("  ratio virga/sklearn (LIBSVM, one core): %.2fx\n", ours / sk);
      out["sklearn"] = {{"mb_per_s", sk}, {"seconds", secs}, {"placement", "one_core"}};
      out["ratio_vs_sklearn"] = ours / sk;
    } else {
      std::printf("  sklearn: not measured (/usr/bin/python3 with python3-sklearn missing?) %s\n",
                  r.out.c_str());
    }
  }
  if (!a.json_out.empty()) std::ofstream(a.json_out) << out.dump(2) << "\n";
  if (!a.keep) fs::remove_all(dir);
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("bench", "Benchmarks, each against a named peer in the same run");
  cmd->require_subcommand(1);
  auto a = std::make_shared<BenchArgs>();
  auto* ingest = cmd->add_subcommand("ingest", "Ingest throughput vs scikit-learn");
  ingest->add_option("--libsvm-mb", a->libsvm_mb, "Size of the generated LIBSVM file")
      ->capture_default_str();
  ingest->add_option("--criteo-rows", a->criteo_rows, "Rows of the generated Criteo file")
      ->capture_default_str();
  ingest->add_option("--dir", a->dir,
                     "Work directory (default: a new one under /tmp); its store/ is recreated");
  ingest->add_option("--json-out", a->json_out, "Write every figure as JSON");
  ingest->add_flag("--keep", a->keep, "Keep the generated files and stores");
  ingest->add_flag("--no-sklearn", a->no_sklearn, "Skip the scikit-learn comparison");
  ingest->callback([a, exit_code] { *exit_code = BenchIngest(*a); });
  RegisterBenchPs(*cmd, exit_code);
  RegisterBenchTrain(*cmd, exit_code);
  RegisterBenchLambda(*cmd, exit_code);
}

}  // namespace virga::cli
