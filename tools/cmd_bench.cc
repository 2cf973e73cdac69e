// `virga bench ingest`: parse+write throughput of LIBSVM and Criteo ingest,
// measured side by side in one run against scikit-learn's load_svmlight_file
// on the same file, plus peak memory of each ingest.
//
// Each ingest runs as a child process (`virga ingest`), so its wall time and
// peak RSS (wait4) are its own. "one core" runs pin the child, writer thread
// included, to CPU 0 (sklearn too, with taskset); "default" lets the OS place
// it on both cores.
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

#include "tools/commands.h"
#include "virga/datagen.h"
#include "virga/text_writer.h"

namespace virga::cli {
namespace {

struct RunResult {
  bool ok = false;
  double seconds = 0;
  long max_rss_kb = 0;
  std::string out;
};

// Runs argv with stdout captured; pins to CPU 0 when `pin`.
RunResult RunChild(const std::vector<std::string>& argv, bool pin) {
  RunResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    if (pin) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(0, &set);
      sched_setaffinity(0, sizeof set, &set);
    }
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
  auto ingest = [&](const std::string& format, const std::string& path, bool pin) {
    const std::string store = "file://" + dir + "/store";
    RunResult r = RunChild({self, "ingest", "--format", format, "--input", path, "--store", store,
                            "--dataset", fmt::format("b{}", run++), "--test-fraction", "0.1"},
                           pin);
    const double mb = FileMb(path);
    nlohmann::json j = {{"format", format}, {"placement", pin ? "one_core" : "default"},
                        {"input_mb", mb}, {"seconds", r.seconds}, {"mb_per_s", mb / r.seconds},
                        {"peak_rss_mb", r.max_rss_kb / 1024.0}, {"ok", r.ok}};
    std::printf("  virga ingest %-6s %-8s: %7.1f MB in %6.2f s = %7.1f MB/s, peak RSS %6.1f MB%s\n",
                format.c_str(), pin ? "one_core" : "default", mb, r.seconds, mb / r.seconds,
                r.max_rss_kb / 1024.0, r.ok ? "" : "  FAILED");
    return j;
  };
  out["virga"] = nlohmann::json::array();
  for (bool pin : {true, false}) {
    out["virga"].push_back(ingest("libsvm", libsvm, pin));
    out["virga"].push_back(ingest("criteo", criteo, pin));
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
  ingest->add_option("--dir", a->dir, "Work directory (default: a new one under /tmp)");
  ingest->add_option("--json-out", a->json_out, "Write every figure as JSON");
  ingest->add_flag("--keep", a->keep, "Keep the generated files and stores");
  ingest->add_flag("--no-sklearn", a->no_sklearn, "Skip the scikit-learn comparison");
  ingest->callback([a, exit_code] { *exit_code = BenchIngest(*a); });
}

}  // namespace virga::cli
