// The stage driver and the function side in one process: a backend whose
// functions are threads running RunStageFunction, so ThreadSanitizer sees
// the driver, its embedded server and the functions' control threads
// together (stage_test runs them as real processes).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "stage/stage_runner.h"
#include "stage/stats_piece.h"
#include "virga/dataset.h"
#include "virga/stage.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

// Functions as threads; Kill is not supported (a stage function stops itself
// with _Exit when killed, which would end the test process).
class ThreadBackend final : public ComputeBackend {
 public:
  ~ThreadBackend() override {
    for (auto& [id, f] : fns_) f->thread.join();
  }
  std::string_view name() const override { return "local"; }
  Result<uint64_t> Launch(std::string_view payload, const FunctionLimits& limits) override {
    std::lock_guard<std::mutex> l(mu_);
    const uint64_t id = ++next_;
    auto f = std::make_unique<Fn>();
    f->info.id = id;
    f->info.label = limits.label;
    f->info.state = FunctionState::kRunning;
    Fn* fp = f.get();
    std::string text(payload);
    f->thread = std::thread([fp, text] {
      const int rc = stage::RunStageFunction(text, "test payload");
      fp->rc.store(rc);
      fp->done.store(true);
    });
    fns_[id] = std::move(f);
    ++launched_;
    return id;
  }
  Result<FunctionInfo> Query(uint64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = fns_.find(id);
    if (it == fns_.end()) return Status::NotFound("no function " + std::to_string(id));
    FunctionInfo info = it->second->info;
    if (it->second->done.load()) {
      info.exit_code = it->second->rc.load();
      info.state = info.exit_code == 0 ? FunctionState::kSucceeded : FunctionState::kFailed;
      info.reason = "exit " + std::to_string(info.exit_code);
    }
    return info;
  }
  Status Kill(uint64_t) override { return Status::OK(); }
  Result<FunctionInfo> Wait(uint64_t id, std::chrono::milliseconds timeout) override {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      VIRGA_ASSIGN_OR_RETURN(FunctionInfo info, Query(id));
      if (IsTerminal(info.state) || std::chrono::steady_clock::now() >= until) return info;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  std::vector<FunctionInfo> List() override { return {}; }
  void Forget(uint64_t) override {}
  int launched() const { return launched_.load(); }

 private:
  struct Fn {
    FunctionInfo info;
    std::thread thread;
    std::atomic<bool> done{false};
    std::atomic<int> rc{0};
  };
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Fn>> fns_;
  uint64_t next_ = 0;
  std::atomic<int> launched_{0};
};

TEST(StageInProcess, IngestWithFunctionsAsThreads) {
  const fs::path dir = fs::temp_directory_path() / fmt::format("virga-stage-unit-{}", ::getpid());
  fs::create_directories(dir);
  std::vector<std::string> inputs;
  uint64_t lines = 0;
  for (int f = 0; f < 3; ++f) {
    std::string text;
    for (int r = 0; r < 400 * (f + 1); ++r, ++lines) {
      text += fmt::format("{} {}:1 {}:{}.5\n", r % 2, 1 + r % 7, 10 + f, r % 13);
    }
    inputs.push_back((dir / fmt::format("in{}.txt", f)).string());
    std::ofstream(inputs.back()) << text;
  }
  auto backend = std::make_shared<ThreadBackend>();
  StageOptions so;
  so.backend_instance = backend;
  so.max_functions = 3;
  so.part_bytes = 4096;  // several byte ranges per file
  IngestOptions o;
  o.format = Format::kLibsvm;
  o.inputs = inputs;
  o.dataset = "threads";
  o.rows_per_partition = 100;
  const std::string store = "file://" + (dir / "store").string();
  StageStats stats;
  auto r = IngestOnFunctions(store, o, so, &stats);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, lines);
  EXPECT_GT(stats.tasks, 6u);
  EXPECT_GE(backend->launched(), 3);  // (task runs come from process outputs: stage_test)
  auto m = ReadManifest(**ObjectStore::Open(store), "threads");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->train_rows + m->test_rows, lines);
  // Feature 10 is real-valued in file 0 only; its statistics count every entry.
  ASSERT_FALSE(m->numeric_features.empty());
  fs::remove_all(dir);
}

TEST(StatsPiece, RoundTripAndExactMerge) {
  stage::StatsPiece a, b;
  a.numeric.push_back({7, 3, 0.5, 2.0, 3.5, 5.25});
  a.binary = {{1, 4}, {9, 2}};
  b.numeric.push_back({9, 1, 3.0, 3.0, 3.0, 9.0});
  b.binary = {{1, 1}, {7, 5}, {1u << 30, 8}};
  const std::string bytes = stage::EncodeStatsPiece(b);
  auto back = stage::DecodeStatsPiece(bytes, "k");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->binary, b.binary);
  ASSERT_EQ(back->numeric.size(), 1u);
  EXPECT_EQ(back->numeric[0].sum_sq, 9.0);
  std::string bad = bytes;
  bad[5] ^= 1;
  EXPECT_TRUE(stage::DecodeStatsPiece(bad, "k").status().IsCorruption());
  a.Merge(std::move(*back));
  // 7: numeric in a, five 1s in b; 9: two 1s in a, numeric in b; 1: binary in both.
  ASSERT_EQ(a.numeric.size(), 2u);
  EXPECT_EQ(a.numeric[0].index, 7u);
  EXPECT_EQ(a.numeric[0].count, 8u);
  EXPECT_EQ(a.numeric[0].sum, 8.5);
  EXPECT_EQ(a.numeric[0].min, 0.5);
  EXPECT_EQ(a.numeric[1].index, 9u);
  EXPECT_EQ(a.numeric[1].count, 3u);
  EXPECT_EQ(a.numeric[1].min, 1.0);
  EXPECT_EQ(a.binary, (std::vector<std::pair<uint32_t, uint64_t>>{{1, 5}, {1u << 30, 8}}));
}

}  // namespace
}  // namespace virga
