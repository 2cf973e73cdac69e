// The `local` compute backend: each function is an OS process.
//
// Threads: callers (Launch, Kill, Query, Wait, List, Forget) and one monitor
// thread per backend. The monitor owns process creation and reaping: it
// spawns functions whose start delay is over, SIGKILLs those past their
// lifetime, and reaps those that ended.
//
// Why pidfds + poll: the monitor sleeps in one poll() over an eventfd (woken
// by Launch and the destructor) and one pidfd per running function, with a
// timeout at the next start or lifetime deadline. A child's end wakes it at
// once, with no polling and no SIGCHLD handler (which would fight with other
// components over a process-wide disposition), and wait4() still gives the
// rusage. Where pidfd_open() is unsupported (Linux < 5.3) it falls back to
// trying wait4(WNOHANG) on such children every 10 ms.
//
// Signalling safety: a pid is reaped only under mu_, after its group has been
// SIGKILLed, so any pid signalled under mu_ with !reaped still names our
// child (alive or a zombie) and its process group, never a recycled pid.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "backend/exit_status.h"
#include "backend/function_files.h"
#include "backend/spawn.h"
#include "common/cpus.h"
#include "virga/backend.h"

namespace virga {
namespace {

using Clock = std::chrono::steady_clock;
using backend::StopCause;

constexpr std::chrono::milliseconds kFallbackTick{10};  // without pidfds

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// SIGKILLs the process group led by `pid` (and `pid` itself, in case the
// group does not exist).
void KillGroup(pid_t pid) {
  if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
}

Status CheckExecutable(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("local backend: worker_binary is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound(fmt::format("worker binary {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("worker binary {}: not a regular file", path));
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return Status::InvalidArgument(
        fmt::format("worker binary {}: not executable: {}", path, std::strerror(errno)));
  }
  return Status::OK();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class LocalBackend final : public ComputeBackend {
 public:
  LocalBackend(LocalBackendOptions options, std::string work_dir, bool owns_work_dir, int wake_fd)
      : options_(std::move(options)),
        work_dir_(std::move(work_dir)),
        owns_work_dir_(owns_work_dir),
        wake_fd_(wake_fd),
        rng_(options_.seed != 0 ? options_.seed
                                : static_cast<uint64_t>(Clock::now().time_since_epoch().count())) {
    monitor_ = std::thread([this] { MonitorLoop(); });
  }

  ~LocalBackend() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    Wake();
    monitor_.join();  // kills and reaps every child before returning
    ::close(wake_fd_);
    if (owns_work_dir_) {
      std::error_code ec;
      std::filesystem::remove_all(work_dir_, ec);
    }
  }

  std::string_view name() const override { return "local"; }
  // As many as this process has CPUs, at most 4 (docs/training.md: 2 workers
  // on 2 CPUs reach the target 1.5x sooner than 4).
  uint32_t DefaultWorkers() const override { return std::min(UsableCpus(), 4u); }
  Result<uint64_t> Launch(std::string_view payload, const FunctionLimits& limits) override;
  Result<FunctionInfo> Query(uint64_t id) override;
  Status Kill(uint64_t id) override;
  Result<FunctionInfo> Wait(uint64_t id, std::chrono::milliseconds timeout) override;
  std::vector<FunctionInfo> List() override;
  void Forget(uint64_t id) override;

 private:
  struct Fn {
    FunctionInfo info;  // state, pid and results as callers see them
    FunctionLimits limits;
    Clock::time_point start_at;                // launch + start delay
    std::optional<Clock::time_point> started;  // when forked
    std::optional<Clock::time_point> ended;    // when reaped (or killed before start)
    int pidfd = -1;
    bool spawning = false;  // the monitor is forking it outside mu_
    bool reaped = false;    // its pid is gone: never signal it again
    StopCause stop = StopCause::kNone;
  };

  // What the monitor needs to fork a function, copied out of mu_.
  struct SpawnJob {
    uint64_t id;
    backend::SpawnSpec spec;
  };

  std::string FilePath(uint64_t id, std::string_view ext) const {
    return fmt::format("{}/fn-{}.{}", work_dir_, id, ext);
  }
  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof one);
    (void)n;  // EAGAIN: a wake-up is already pending
  }
  // Snapshot with wall/GB-seconds up to now for a live function. REQUIRES: mu_ held.
  FunctionInfo Snapshot(const Fn& fn, bool with_output) const;
  // REQUIRES: mu_ held.
  SpawnJob MakeSpawnJob(const Fn& fn) const;

  void MonitorLoop();
  void Spawn(SpawnJob& job);
  // Reaps `id` if it has exited; `block` waits for it. Reads its files and
  // publishes its final state unless `quiet` (shutdown).
  void Reap(uint64_t id, bool block);
  void ShutdownAll();

  const LocalBackendOptions options_;
  const std::string work_dir_;
  const bool owns_work_dir_;
  const int wake_fd_;  // eventfd

  std::mutex mu_;
  std::condition_variable ended_cv_;  // notified when a function becomes terminal
  std::map<uint64_t, Fn> fns_;        // GUARDED_BY(mu_); by id = launch order
  uint64_t next_id_ = 1;              // GUARDED_BY(mu_)
  bool stopping_ = false;             // GUARDED_BY(mu_)
  std::mt19937_64 rng_;               // GUARDED_BY(mu_)

  std::thread monitor_;
};

FunctionInfo LocalBackend::Snapshot(const Fn& fn, bool with_output) const {
  FunctionInfo info;
  info.id = fn.info.id;
  info.label = fn.info.label;
  info.state = fn.info.state;
  info.pid = fn.info.pid;
  info.exit_code = fn.info.exit_code;
  info.term_signal = fn.info.term_signal;
  info.reason = fn.info.reason;
  info.peak_rss_bytes = fn.info.peak_rss_bytes;
  info.cpu_seconds = fn.info.cpu_seconds;
  info.launched_at = fn.info.launched_at;
  info.output_truncated = fn.info.output_truncated;
  if (with_output) {
    info.output = fn.info.output;
    info.error_tail = fn.info.error_tail;
  }
  if (fn.started) info.wall_seconds = Seconds(fn.ended.value_or(Clock::now()) - *fn.started);
  info.gb_seconds = static_cast<double>(fn.limits.memory_mb) / 1024.0 * info.wall_seconds;
  return info;
}

LocalBackend::SpawnJob LocalBackend::MakeSpawnJob(const Fn& fn) const {
  const uint64_t id = fn.info.id;
  SpawnJob job{id, {}};
  job.spec.binary = options_.worker_binary;
  job.spec.argv.push_back(options_.worker_binary);
  job.spec.argv.insert(job.spec.argv.end(), options_.worker_args.begin(),
                       options_.worker_args.end());
  job.spec.argv.push_back("--payload");
  job.spec.argv.push_back(FilePath(id, "json"));
  job.spec.stdout_path = FilePath(id, "out");
  job.spec.stderr_path = FilePath(id, "err");
  job.spec.memory_mb = options_.enforce_memory_cap ? fn.limits.memory_mb : 0;
  // Forked by the monitor thread, which lives as long as the backend: a
  // function dies with the process that launched it, also of a SIGKILL.
  job.spec.parent_death_signal = SIGKILL;
  return job;
}

Result<uint64_t> LocalBackend::Launch(std::string_view payload, const FunctionLimits& limits) {
  VIRGA_RETURN_IF_ERROR(CheckExecutable(options_.worker_binary));
  if (limits.lifetime.count() < 0 || limits.max_start_delay.count() < 0) {
    return Status::InvalidArgument("local backend: negative lifetime or start delay");
  }
  uint64_t id;
  std::chrono::microseconds delay{0};
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    if (limits.max_start_delay.count() > 0) {
      std::uniform_int_distribution<int64_t> dist(
          0, std::chrono::duration_cast<std::chrono::microseconds>(limits.max_start_delay).count());
      delay = std::chrono::microseconds(dist(rng_));
    }
  }
  VIRGA_RETURN_IF_ERROR(backend::WriteFile(FilePath(id, "json"), payload));

  Fn fn;
  fn.info.id = id;
  fn.info.label = limits.label;
  fn.info.launched_at = std::chrono::system_clock::now();
  fn.limits = limits;
  fn.start_at = Clock::now() + delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fns_.emplace(id, std::move(fn));
  }
  Wake();
  return id;
}

Result<FunctionInfo> LocalBackend::Query(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fns_.find(id);
  if (it == fns_.end()) return Status::NotFound(fmt::format("function {}", id));
  return Snapshot(it->second, /*with_output=*/true);
}

Status LocalBackend::Kill(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fns_.find(id);
  if (it == fns_.end()) return Status::NotFound(fmt::format("function {}", id));
  Fn& fn = it->second;
  if (IsTerminal(fn.info.state)) return Status::OK();
  if (fn.info.state == FunctionState::kStarting && !fn.spawning) {
    fn.info.state = FunctionState::kKilled;
    fn.info.reason = "killed before start";
    fn.ended = Clock::now();
    ended_cv_.notify_all();
    return Status::OK();
  }
  if (fn.stop == StopCause::kNone) fn.stop = StopCause::kKill;
  // While spawning, the monitor sends the signal once the pid is known.
  if (fn.info.pid > 0 && !fn.reaped) KillGroup(fn.info.pid);
  return Status::OK();
}

Result<FunctionInfo> LocalBackend::Wait(uint64_t id, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  ended_cv_.wait_for(lock, timeout, [&] {
    auto it = fns_.find(id);
    return it == fns_.end() || IsTerminal(it->second.info.state);
  });
  auto it = fns_.find(id);
  if (it == fns_.end()) return Status::NotFound(fmt::format("function {}", id));
  return Snapshot(it->second, /*with_output=*/true);
}

std::vector<FunctionInfo> LocalBackend::List() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FunctionInfo> out;
  out.reserve(fns_.size());
  for (const auto& [id, fn] : fns_) out.push_back(Snapshot(fn, /*with_output=*/false));
  return out;
}

void LocalBackend::Forget(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fns_.find(id);
    if (it == fns_.end() || !IsTerminal(it->second.info.state)) return;
    fns_.erase(it);
  }
  for (const char* ext : {"json", "out", "err"}) ::unlink(FilePath(id, ext).c_str());
}

void LocalBackend::MonitorLoop() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> polled_ids;      // parallel to fds[1..]
  std::vector<uint64_t> unpollable_ids;  // running without a pidfd
  std::vector<SpawnJob> due;
  for (;;) {
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    polled_ids.clear();
    unpollable_ids.clear();
    due.clear();
    Clock::time_point next = Clock::time_point::max();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      const Clock::time_point now = Clock::now();
      for (auto& [id, fn] : fns_) {
        if (fn.info.state == FunctionState::kStarting && !fn.spawning) {
          if (fn.start_at <= now) {
            fn.spawning = true;
            due.push_back(MakeSpawnJob(fn));
          } else {
            next = std::min(next, fn.start_at);
          }
        } else if (fn.info.state == FunctionState::kRunning && !fn.reaped) {
          if (fn.limits.lifetime.count() > 0 && fn.stop == StopCause::kNone) {
            const Clock::time_point deadline = *fn.started + fn.limits.lifetime;
            if (deadline <= now) {
              fn.stop = StopCause::kLifetime;
              KillGroup(fn.info.pid);
            } else {
              next = std::min(next, deadline);
            }
          }
          if (fn.pidfd >= 0) {
            fds.push_back(pollfd{fn.pidfd, POLLIN, 0});
            polled_ids.push_back(id);
          } else {
            unpollable_ids.push_back(id);
          }
        }
      }
    }
    if (!due.empty()) {
      for (SpawnJob& job : due) Spawn(job);
      continue;  // rebuild the poll set with the new pidfds
    }

    int timeout_ms = -1;
    if (next != Clock::time_point::max()) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
    }
    if (!unpollable_ids.empty() && (timeout_ms < 0 || timeout_ms > kFallbackTick.count())) {
      timeout_ms = static_cast<int>(kFallbackTick.count());
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      // Should not happen (EFAULT/EINVAL/ENOMEM); do not spin on it.
      std::this_thread::sleep_for(kFallbackTick);
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      ssize_t r = ::read(wake_fd_, &count, sizeof count);
      (void)r;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Reap(polled_ids[i - 1], /*block=*/false);
    }
    for (uint64_t id : unpollable_ids) Reap(id, /*block=*/false);
  }
  ShutdownAll();
}

void LocalBackend::Spawn(SpawnJob& job) {
  std::string lifetime_ms, memory_mb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Fn& fn = fns_.at(job.id);  // not terminal, so not forgotten
    lifetime_ms = std::to_string(fn.limits.lifetime.count());
    memory_mb = std::to_string(fn.limits.memory_mb);
  }
  job.spec.env = backend::EnvironmentWith({{"VIRGA_FUNCTION_ID", std::to_string(job.id)},
                                           {"VIRGA_FUNCTION_LIFETIME_MS", lifetime_ms},
                                           {"VIRGA_FUNCTION_MEMORY_MB", memory_mb}});
  Result<pid_t> pid = backend::SpawnProcess(job.spec);
  int pidfd = pid.ok() ? PidfdOpen(*pid) : -1;
  if (pidfd >= 0) ::fcntl(pidfd, F_SETFD, FD_CLOEXEC);  // pidfds are CLOEXEC since 5.x; be sure

  std::lock_guard<std::mutex> lock(mu_);
  Fn& fn = fns_.at(job.id);
  fn.spawning = false;
  if (!pid.ok()) {
    fn.info.state = FunctionState::kFailed;
    fn.info.reason = pid.status().ToString();
    fn.ended = Clock::now();
    ended_cv_.notify_all();
    return;
  }
  fn.info.pid = *pid;
  fn.info.state = FunctionState::kRunning;
  fn.started = Clock::now();
  fn.pidfd = pidfd;
  if (fn.stop != StopCause::kNone) KillGroup(*pid);  // Kill() came while forking
}

void LocalBackend::Reap(uint64_t id, bool block) {
  pid_t pid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fns_.find(id);
    if (it == fns_.end() || it->second.reaped) return;
    pid = it->second.info.pid;
  }
  // Wait (without reaping: WNOWAIT) outside mu_. Only this thread reaps, so
  // `pid` stays ours meanwhile.
  siginfo_t si{};
  int w;
  do w = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  while (w < 0 && errno == EINTR);
  if (w == 0 && si.si_pid == 0) return;  // still running (spurious wake-up, or the fallback tick)

  int status = 0;
  rusage usage{};
  StopCause stop;
  uint64_t memory_mb;
  std::chrono::milliseconds lifetime;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Fn& fn = fns_.at(id);
    // It exited: end its helpers while its zombie still pins the group id.
    ::kill(-pid, SIGKILL);
    pid_t r;
    do r = ::wait4(pid, &status, 0, &usage);  // a zombie by now: returns at once
    while (r < 0 && errno == EINTR);
    fn.reaped = true;
    fn.ended = Clock::now();
    if (fn.pidfd >= 0) ::close(fn.pidfd);
    fn.pidfd = -1;
    if (r < 0) {  // ECHILD: someone else reaped it
      fn.info.state = FunctionState::kFailed;
      fn.info.reason = "reaped elsewhere (is SIGCHLD ignored?)";
      ended_cv_.notify_all();
      return;
    }
    stop = fn.stop;
    memory_mb = fn.limits.memory_mb;
    lifetime = fn.limits.lifetime;
  }

  // File I/O outside mu_; the function stays non-terminal until published.
  backend::FunctionOutput files =
      backend::ReadFunctionOutput(FilePath(id, "out"), FilePath(id, "err"));
  backend::ExitOutcome outcome =
      backend::ClassifyExit(status, stop, memory_mb, lifetime, files.error_tail);

  std::lock_guard<std::mutex> lock(mu_);
  Fn& fn = fns_.at(id);
  fn.info.state = outcome.state;
  fn.info.exit_code = outcome.exit_code;
  fn.info.term_signal = outcome.term_signal;
  fn.info.reason = std::move(outcome.reason);
  fn.info.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux: KiB
  fn.info.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                        static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  fn.info.output = std::move(files.output);
  fn.info.output_truncated = files.output_truncated;
  fn.info.error_tail = std::move(files.error_tail);
  ended_cv_.notify_all();
}

void LocalBackend::ShutdownAll() {
  std::vector<uint64_t> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, fn] : fns_) {
      if (fn.info.state == FunctionState::kStarting) {  // never forked (the monitor is here)
        fn.info.state = FunctionState::kKilled;
        fn.info.reason = "killed before start: backend shut down";
        fn.ended = Clock::now();
      } else if (fn.info.state == FunctionState::kRunning && !fn.reaped) {
        if (fn.stop == StopCause::kNone) fn.stop = StopCause::kShutdown;
        KillGroup(fn.info.pid);
        live.push_back(id);
      }
    }
    ended_cv_.notify_all();
  }
  for (uint64_t id : live) Reap(id, /*block=*/true);
}

}  // namespace

Result<std::unique_ptr<ComputeBackend>> MakeLocalBackend(const LocalBackendOptions& options) {
  if (options.worker_binary.empty()) {
    return Status::InvalidArgument("local backend: worker_binary is empty");
  }
  std::string work_dir = options.work_dir;
  bool owns = false;
  if (work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/virga-functions-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Status::IOError(fmt::format("mkdtemp {}: {}", tmpl, std::strerror(errno)));
    }
    work_dir = std::move(tmpl);
    owns = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(work_dir, ec);
    if (ec) return Status::IOError(fmt::format("work dir {}: {}", work_dir, ec.message()));
  }
  int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    Status s = Status::IOError(fmt::format("eventfd: {}", std::strerror(errno)));
    if (owns) ::rmdir(work_dir.c_str());
    return s;
  }
  return std::unique_ptr<ComputeBackend>(
      std::make_unique<LocalBackend>(options, std::move(work_dir), owns, wake_fd));
}

}  // namespace virga
