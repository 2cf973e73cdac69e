#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "virga/backend.h"

namespace virga {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Generous: the machine is shared and loaded. Only the lifetime test bounds
// how long something may take.
constexpr auto kPatience = 20s;

// Each function runs its payload as a shell script ("$2" is the payload file).
constexpr const char* kRunPayload = "eval \"$(cat \"$2\")\"";

bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = kPatience) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// True once `pid` no longer runs: no such process, or a zombie nobody reaped
// (a grandchild re-parented to a PID 1 that does not reap).
bool Gone(int pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LocalBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/backend_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    backend_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A backend whose functions are `/bin/sh -c script sh --payload FILE`.
  void Make(const std::string& script = kRunPayload, std::string work_dir = "") {
    LocalBackendOptions options;
    options.worker_binary = "/bin/sh";
    options.worker_args = {"-c", script, "sh"};
    options.work_dir = work_dir.empty() ? dir_ : work_dir;
    options.seed = 42;
    Make(options);
  }
  void Make(const LocalBackendOptions& options) {
    auto backend = MakeLocalBackend(options);
    ASSERT_TRUE(backend.ok()) << backend.status().ToString();
    backend_ = std::move(*backend);
  }

  uint64_t Launch(const std::string& payload, FunctionLimits limits = {}) {
    auto id = backend_->Launch(payload, limits);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
  }
  FunctionInfo WaitEnd(uint64_t id) {
    auto info = backend_->Wait(id, kPatience);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    if (!info.ok()) return {};
    EXPECT_TRUE(IsTerminal(info->state)) << FunctionStateName(info->state);
    return *info;
  }
  FunctionInfo Query(uint64_t id) {
    auto info = backend_->Query(id);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : FunctionInfo{};
  }
  bool EventuallyRunning(uint64_t id) {
    return Eventually([&] { return Query(id).state == FunctionState::kRunning; });
  }

  std::string dir_;
  std::unique_ptr<ComputeBackend> backend_;
};

TEST_F(LocalBackendTest, SucceedsAndReturnsItsOutput) {
  Make("cat \"$2\"; echo done >&2");
  const std::string payload = "{\"job\": \"j1\", \"text\": \"caf\xc3\xa9 \\n \\\"q\\\"\"}\n";
  FunctionLimits limits;
  limits.label = "job-1/w0";
  uint64_t id = Launch(payload, limits);
  FunctionInfo info = WaitEnd(id);
  EXPECT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
  EXPECT_EQ(info.exit_code, 0);
  EXPECT_EQ(info.reason, "exit 0");
  EXPECT_EQ(info.output, payload);
  EXPECT_FALSE(info.output_truncated);
  EXPECT_EQ(info.error_tail, "done\n");
  EXPECT_EQ(info.label, "job-1/w0");
  EXPECT_GT(info.pid, 0);
  EXPECT_EQ(backend_->name(), "local");
  // The files are where the contract says.
  const std::string base = dir_ + "/fn-" + std::to_string(id);
  EXPECT_EQ(ReadWhole(base + ".json"), payload);
  EXPECT_EQ(ReadWhole(base + ".out"), payload);
  EXPECT_EQ(ReadWhole(base + ".err"), "done\n");
  // Private: a payload holds the job's token.
  for (const char* ext : {".json", ".out", ".err"}) {
    struct stat st {};
    ASSERT_EQ(::stat((base + ext).c_str(), &st), 0) << ext;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << ext;
  }
}

TEST_F(LocalBackendTest, FilesLeftByAnEarlierRunAreReplacedPrivate) {
  for (const char* ext : {".json", ".out", ".err"}) {
    const std::string path = dir_ + "/fn-1" + ext;
    std::ofstream(path) << "old";
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  }
  Make("cat \"$2\"");
  uint64_t id = Launch("secret");
  ASSERT_EQ(id, 1u);
  EXPECT_EQ(WaitEnd(id).output, "secret");
  for (const char* ext : {".json", ".out", ".err"}) {
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/fn-1" + ext).c_str(), &st), 0) << ext;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << ext;
  }
}

TEST_F(LocalBackendTest, FunctionsDieWithAKilledParent) {
  // A process that launches a function and is then SIGKILLed (no destructor
  // runs): the function gets SIGKILL from the kernel (PR_SET_PDEATHSIG).
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(fds[0]);
    LocalBackendOptions options;
    options.worker_binary = "/bin/sh";
    options.worker_args = {"-c", "sleep 60", "sh"};
    options.work_dir = dir_;
    auto backend = MakeLocalBackend(options);
    if (!backend.ok()) ::_exit(1);
    auto id = (*backend)->Launch("{}", {});
    if (!id.ok()) ::_exit(2);
    for (int i = 0; i < 4000; ++i) {
      auto info = (*backend)->Query(*id);
      if (info.ok() && info->state == FunctionState::kRunning) {
        const int pid = info->pid;
        if (::write(fds[1], &pid, sizeof pid) != sizeof pid) ::_exit(3);
        break;
      }
      ::usleep(5000);
    }
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  int fn_pid = 0;
  ASSERT_EQ(::read(fds[0], &fn_pid, sizeof fn_pid), static_cast<ssize_t>(sizeof fn_pid));
  ::close(fds[0]);
  ASSERT_GT(fn_pid, 0);
  EXPECT_FALSE(Gone(fn_pid));
  ASSERT_EQ(::kill(parent, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(parent, &status, 0), parent);
  const auto t0 = Clock::now();
  EXPECT_TRUE(Eventually([&] { return Gone(fn_pid); }, 2s)) << fn_pid;
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST_F(LocalBackendTest, NonZeroExitAndSignalsFailWithAReason) {
  Make();
  FunctionInfo info = WaitEnd(Launch("echo 'bad input' >&2; exit 3"));
  EXPECT_EQ(info.state, FunctionState::kFailed);
  EXPECT_EQ(info.exit_code, 3);
  EXPECT_EQ(info.reason, "exit 3");
  EXPECT_NE(info.error_tail.find("bad input"), std::string::npos);

  info = WaitEnd(Launch("kill -SEGV $$"));
  EXPECT_EQ(info.state, FunctionState::kFailed);
  EXPECT_EQ(info.term_signal, SIGSEGV);
  EXPECT_EQ(info.reason, "signal 11 (Segmentation fault)");
}

TEST_F(LocalBackendTest, KillEndsKilledWithItsHelpers) {
  Make();
  // The function forks a helper and reports its pid on stdout.
  uint64_t id = Launch("sleep 30 & echo $!; wait");
  ASSERT_TRUE(EventuallyRunning(id));
  const std::string out = dir_ + "/fn-" + std::to_string(id) + ".out";
  ASSERT_TRUE(Eventually([&] { return ReadWhole(out).find('\n') != std::string::npos; }));
  const int helper = std::stoi(ReadWhole(out));
  const int pid = Query(id).pid;
  ASSERT_GT(pid, 0);

  ASSERT_TRUE(backend_->Kill(id).ok());
  FunctionInfo info = WaitEnd(id);
  EXPECT_EQ(info.state, FunctionState::kKilled);
  EXPECT_EQ(info.reason, "killed");
  EXPECT_EQ(info.term_signal, SIGKILL);
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: no such process
  EXPECT_TRUE(Eventually([&] { return Gone(helper); }));
  EXPECT_TRUE(backend_->Kill(id).ok());  // already ended: OK, no effect
  EXPECT_EQ(Query(id).state, FunctionState::kKilled);
}

TEST_F(LocalBackendTest, LifetimeEndsItTimedOut) {
  Make();
  FunctionLimits limits;
  limits.lifetime = 300ms;
  const auto start = Clock::now();
  uint64_t id = Launch("sleep 30", limits);
  FunctionInfo info = WaitEnd(id);
  const auto took = Clock::now() - start;
  EXPECT_EQ(info.state, FunctionState::kTimedOut);
  EXPECT_EQ(info.reason, "lifetime 0.3 s reached");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2500ms);
  EXPECT_GE(info.wall_seconds, 0.29);
}

TEST_F(LocalBackendTest, TheFunctionSeesItsLimitsInItsEnvironment) {
  ::setenv("VIRGA_BACKEND_TEST_INHERITED", "inherited", 1);
  ::setenv("VIRGA_FUNCTION_ID", "stale", 1);  // the backend's value wins
  LocalBackendOptions options;
  options.worker_binary = "/bin/sh";
  options.worker_args = {"-c", kRunPayload, "sh"};
  options.work_dir = dir_;
  options.enforce_memory_cap = true;
  Make(options);
  ::unsetenv("VIRGA_FUNCTION_ID");
  FunctionLimits limits;
  limits.lifetime = 12'345ms;
  limits.memory_mb = 777;
  uint64_t id = Launch(
      "echo \"$VIRGA_FUNCTION_ID $VIRGA_FUNCTION_LIFETIME_MS $VIRGA_FUNCTION_MEMORY_MB "
      "$VIRGA_BACKEND_TEST_INHERITED\"; ulimit -v",
      limits);
  FunctionInfo info = WaitEnd(id);
  ::unsetenv("VIRGA_BACKEND_TEST_INHERITED");
  EXPECT_EQ(info.state, FunctionState::kSucceeded) << info.reason << info.error_tail;
  EXPECT_EQ(info.output,
            std::to_string(id) + " 12345 777 inherited\n" + std::to_string(777 * 1024) + "\n");

  // Not enforced: announced, but no RLIMIT_AS (for sanitizer builds of the worker).
  options.enforce_memory_cap = false;
  Make(options);
  info = WaitEnd(Launch("echo $VIRGA_FUNCTION_MEMORY_MB; ulimit -v", limits));
  EXPECT_EQ(info.output, "777\nunlimited\n");
}

TEST_F(LocalBackendTest, MemoryCapEndsItOutOfMemory) {
  LocalBackendOptions options;
  options.worker_binary = VIRGA_BACKEND_TEST_ALLOC;
  options.work_dir = dir_;
  options.enforce_memory_cap = true;  // the helper is not sanitized
  FunctionLimits limits;
  limits.memory_mb = 200;

  // std::bad_alloc under the cap: an abort whose stderr names it.
  options.worker_args = {"2048", "new"};
  Make(options);
  FunctionInfo info = WaitEnd(Launch("{}", limits));
  EXPECT_EQ(info.state, FunctionState::kOutOfMemory) << info.reason << "\n" << info.error_tail;
  EXPECT_NE(info.reason.find("out of memory"), std::string::npos) << info.reason;

  // A worker that checks its allocations exits kExitOutOfMemory.
  options.worker_args = {"2048", "malloc86"};
  Make(options);
  info = WaitEnd(Launch("{}", limits));
  EXPECT_EQ(info.state, FunctionState::kOutOfMemory) << info.reason;
  EXPECT_EQ(info.exit_code, kExitOutOfMemory);

  // The same allocation fits without a cap.
  options.worker_args = {"64", "malloc86"};
  Make(options);
  limits.memory_mb = 0;
  info = WaitEnd(Launch("{}", limits));
  EXPECT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
}

TEST_F(LocalBackendTest, PythonMemoryErrorIsOutOfMemory) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  LocalBackendOptions options;
  options.worker_binary = "/usr/bin/python3";
  options.worker_args = {"-c", "x = bytearray(2 * 1024 ** 3)"};
  options.work_dir = dir_;
  options.enforce_memory_cap = true;  // the helper is not sanitized
  Make(options);
  FunctionLimits limits;
  limits.memory_mb = 200;
  FunctionInfo info = WaitEnd(Launch("{}", limits));
  EXPECT_EQ(info.state, FunctionState::kOutOfMemory) << info.reason << "\n" << info.error_tail;
}

TEST_F(LocalBackendTest, ResourceUseIsReported) {
  LocalBackendOptions options;
  options.worker_binary = VIRGA_BACKEND_TEST_ALLOC;
  options.worker_args = {"64", "malloc86"};
  options.work_dir = dir_;
  Make(options);
  FunctionLimits limits;
  limits.memory_mb = 512;
  FunctionInfo info = WaitEnd(Launch("{}", limits));
  ASSERT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
  EXPECT_GE(info.peak_rss_bytes, 60u << 20);
  EXPECT_LT(info.peak_rss_bytes, 512u << 20);
  EXPECT_GT(info.wall_seconds, 0);
  EXPECT_DOUBLE_EQ(info.gb_seconds, 0.5 * info.wall_seconds);

  Make();
  info = WaitEnd(Launch("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"));
  ASSERT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
  EXPECT_GT(info.cpu_seconds, 0);
  EXPECT_LE(info.cpu_seconds, info.wall_seconds * 1.1 + 0.05);
}

TEST_F(LocalBackendTest, StartDelayKeepsItStartingWithoutBlockingLaunch) {
  Make();
  FunctionLimits limits;
  limits.max_start_delay = 800ms;
  limits.lifetime = 60s;
  // Several, so that at least one draws a delay long enough to observe.
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Launch("sleep 30", limits));
  int seen_starting = 0;
  for (uint64_t id : ids) {
    FunctionInfo info = Query(id);
    if (info.state == FunctionState::kStarting) {
      ++seen_starting;
      EXPECT_EQ(info.pid, 0);
      EXPECT_EQ(info.wall_seconds, 0);
    }
  }
  EXPECT_GE(seen_starting, 1);
  for (uint64_t id : ids) EXPECT_TRUE(EventuallyRunning(id));
  for (uint64_t id : ids) EXPECT_GT(Query(id).pid, 0);
  for (uint64_t id : ids) ASSERT_TRUE(backend_->Kill(id).ok());
  for (uint64_t id : ids) EXPECT_EQ(WaitEnd(id).state, FunctionState::kKilled);
}

TEST_F(LocalBackendTest, KillDuringTheStartDelayNeverStartsIt) {
  Make();
  FunctionLimits limits;
  limits.max_start_delay = 10s;
  uint64_t id = Launch("touch started", limits);
  FunctionInfo info = Query(id);
  if (info.state != FunctionState::kStarting) GTEST_SKIP() << "drew a near-zero delay";
  ASSERT_TRUE(backend_->Kill(id).ok());
  info = WaitEnd(id);
  EXPECT_EQ(info.state, FunctionState::kKilled);
  EXPECT_EQ(info.reason, "killed before start");
  EXPECT_EQ(info.pid, 0);
}

TEST_F(LocalBackendTest, WaitReturnsAtItsTimeout) {
  Make();
  uint64_t id = Launch("sleep 30");
  auto info = backend_->Wait(id, 50ms);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(IsTerminal(info->state));
}

TEST_F(LocalBackendTest, ListAndForget) {
  Make();
  FunctionLimits limits;
  limits.label = "a";
  uint64_t done = Launch("echo hi", limits);
  limits.label = "b";
  uint64_t running = Launch("sleep 30", limits);
  WaitEnd(done);
  ASSERT_TRUE(EventuallyRunning(running));

  std::vector<FunctionInfo> all = backend_->List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, done);
  EXPECT_EQ(all[0].label, "a");
  EXPECT_EQ(all[0].state, FunctionState::kSucceeded);
  EXPECT_TRUE(all[0].output.empty());  // List leaves outputs out
  EXPECT_EQ(all[1].id, running);
  EXPECT_EQ(all[1].state, FunctionState::kRunning);
  EXPECT_GT(all[1].wall_seconds, 0);

  backend_->Forget(running);  // not ended: stays
  backend_->Forget(done);
  backend_->Forget(12345);  // unknown: ignored
  all = backend_->List();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, running);
  EXPECT_TRUE(backend_->Query(done).status().IsNotFound());
  EXPECT_TRUE(backend_->Wait(done, 10ms).status().IsNotFound());
  EXPECT_TRUE(backend_->Kill(done).IsNotFound());
  EXPECT_FALSE(fs::exists(dir_ + "/fn-" + std::to_string(done) + ".out"));
  EXPECT_FALSE(fs::exists(dir_ + "/fn-" + std::to_string(done) + ".json"));
}

TEST_F(LocalBackendTest, DestructionKillsEverythingAndRemovesItsOwnDir) {
  LocalBackendOptions options;
  options.worker_binary = "/bin/sh";
  options.worker_args = {"-c", "sleep 30 & echo $!; wait", "sh"};
  Make(options);  // no work_dir: the backend makes (and owns) a temp dir
  FunctionLimits delayed;
  delayed.max_start_delay = 30s;
  Launch("{}", delayed);  // most likely still in its delay at destruction
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Launch("{}"));
  std::vector<int> pids;
  for (uint64_t id : ids) {
    ASSERT_TRUE(EventuallyRunning(id));
    pids.push_back(Query(id).pid);
  }
  // The owned dir, found through the payload path the function was given.
  const std::string owned_dir =
      fs::path(fs::read_symlink("/proc/" + std::to_string(pids[0]) + "/fd/1")).parent_path();
  ASSERT_TRUE(fs::exists(owned_dir));
  backend_.reset();
  for (int pid : pids) EXPECT_NE(::kill(pid, 0), 0) << pid;
  EXPECT_FALSE(fs::exists(owned_dir));

  // A given work dir stays.
  Make();
  Launch("sleep 30");
  backend_.reset();
  EXPECT_TRUE(fs::exists(dir_ + "/fn-1.json"));
}

TEST_F(LocalBackendTest, ManyConcurrentFunctionsAreAllReaped) {
  Make();
  constexpr int kCount = 50;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kCount; ++i) {
    // Every third fails; all echo their id.
    ids.push_back(
        Launch(i % 3 == 0 ? "echo $VIRGA_FUNCTION_ID; exit 5" : "echo $VIRGA_FUNCTION_ID"));
  }
  for (int i = 0; i < kCount; ++i) {
    FunctionInfo info = WaitEnd(ids[i]);
    EXPECT_EQ(info.output, std::to_string(ids[i]) + "\n");
    if (i % 3 == 0) {
      EXPECT_EQ(info.state, FunctionState::kFailed);
      EXPECT_EQ(info.reason, "exit 5");
    } else {
      EXPECT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
    }
    EXPECT_NE(::kill(info.pid, 0), 0);
  }
}

TEST_F(LocalBackendTest, CallersOnManyThreads) {
  Make();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 8;
  std::vector<std::vector<uint64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      FunctionLimits limits;
      limits.max_start_delay = 20ms;
      for (int i = 0; i < kPerThread; ++i) {
        // Half run long and are killed by this thread; half end on their own.
        auto id = backend_->Launch(i % 2 == 0 ? "sleep 30" : "exit 0", limits);
        ASSERT_TRUE(id.ok());
        ids[t].push_back(*id);
        backend_->List();
        if (i % 2 == 0) {
          ASSERT_TRUE(backend_->Kill(*id).ok());
        }
      }
      for (size_t i = 0; i < ids[t].size(); ++i) {
        auto info = backend_->Wait(ids[t][i], kPatience);
        ASSERT_TRUE(info.ok());
        EXPECT_EQ(info->state, i % 2 == 0 ? FunctionState::kKilled : FunctionState::kSucceeded)
            << info->reason;
        backend_->Forget(ids[t][i]);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(backend_->List().empty());
}

TEST_F(LocalBackendTest, OutputIsCappedAndStderrTailKept) {
  Make();
  FunctionInfo info =
      WaitEnd(Launch("head -c 2000000 /dev/zero | tr '\\0' a; i=0; while [ $i -lt 1000 ]; do "
                     "echo \"line $i\" >&2; i=$((i+1)); done"));
  ASSERT_EQ(info.state, FunctionState::kSucceeded) << info.reason;
  EXPECT_EQ(info.output.size(), size_t{1} << 20);
  EXPECT_TRUE(info.output_truncated);
  EXPECT_EQ(info.error_tail.size(), 4096u);
  EXPECT_TRUE(info.error_tail.ends_with("line 999\n"));
}

TEST_F(LocalBackendTest, LaunchChecksTheWorkerBinary) {
  LocalBackendOptions options;
  options.worker_binary = dir_ + "/no-such-virga";
  options.work_dir = dir_;
  Make(options);
  auto id = backend_->Launch("{}", {});
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find(options.worker_binary), std::string::npos)
      << id.status().ToString();

  const std::string plain = dir_ + "/not-executable";
  std::ofstream(plain) << "#!/bin/sh\n";
  ::chmod(plain.c_str(), 0644);
  options.worker_binary = plain;
  Make(options);
  id = backend_->Launch("{}", {});
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find(plain), std::string::npos) << id.status().ToString();

  options.worker_binary = "";
  EXPECT_FALSE(MakeLocalBackend(options).ok());
}

}  // namespace
}  // namespace virga
