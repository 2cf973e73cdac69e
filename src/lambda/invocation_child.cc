#include "lambda/invocation_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "lambda/lambda_event.h"

namespace virga::lambda {
namespace {

using Clock = std::chrono::steady_clock;

// What is left of the group's output is read for at most this long after the
// child exited (a helper that left the group may hold the pipes open).
constexpr std::chrono::milliseconds kDrainAfterExit{200};
// Without pidfds (Linux < 5.3) the exit is polled this often.
constexpr int kExitPollMs = 5;

Status Errno(const char* what) {
  return Status::IOError(std::string(what) + ": " + std::strerror(errno));
}

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

// In the child: set up its process, run the body, leave without running the
// parent's destructors.
[[noreturn]] void ChildMain(const ChildSpec& spec, int null_fd, int out_fd, int err_fd) {
  ::setpgid(0, 0);
  if (::dup2(null_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
  ::close_range(3, ~0U, 0);
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  for (const auto& [name, value] : spec.env) {
    if (value.empty()) {
      ::unsetenv(name.c_str());
    } else {
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  if (spec.memory_mb > 0) {
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(spec.memory_mb) << 20;
    ::setrlimit(RLIMIT_AS, &limit);
  }
  int code = 1;
  try {
    code = spec.body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "virga lambda-runtime: the invocation threw: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "virga lambda-runtime: the invocation threw\n");
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// The parent's side of one child: its pipes, until both are closed.
class Collector {
 public:
  Collector(int out_fd, int err_fd, bool tee) : out_fd_(out_fd), err_fd_(err_fd), tee_(tee) {}
  ~Collector() {
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  bool open() const { return out_fd_ >= 0 || err_fd_ >= 0; }
  int out_fd() const { return out_fd_; }
  int err_fd() const { return err_fd_; }

  // Reads what `fd` has (one read); closes it at EOF or on an error.
  void ReadFrom(int fd) {
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      ::close(fd);
      (fd == out_fd_ ? out_fd_ : err_fd_) = -1;
      return;
    }
    const size_t got = static_cast<size_t>(n);
    if (fd == out_fd_) {
      size_t keep = std::min(got, kMaxOutputBytes - output_.size());
      output_.append(buf, keep);
      if (keep < got) truncated_ = true;
      return;
    }
    if (tee_) WriteAll(2, buf, got);
    stderr_.append(buf, got);
    if (stderr_.size() > 16 * kStderrTailBytes) stderr_.erase(0, stderr_.size() - kStderrTailBytes);
  }

  void Finish(ChildOutcome* out) {
    out->output = std::move(output_);
    out->output_truncated = truncated_;
    if (stderr_.size() > kStderrTailBytes) stderr_.erase(0, stderr_.size() - kStderrTailBytes);
    out->stderr_tail = std::move(stderr_);
  }

 private:
  int out_fd_;
  int err_fd_;
  bool tee_;
  std::string output_;
  bool truncated_ = false;
  std::string stderr_;
};

// True once `pid` has exited (it stays a zombie until wait4).
bool HasExited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // reaped elsewhere: nothing left to wait for
  }
  return info.si_pid == pid;
}

int MillisUntil(Clock::time_point t) {
  if (t == Clock::time_point::max()) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

// Waits for the child, reading its output, killing its group at kill_at.
void Supervise(pid_t pid, int pidfd, const ChildSpec& spec, Collector* pipes, bool* killed) {
  bool exited = false;
  Clock::time_point drain_until{};
  while (true) {
    if (!exited && !*killed && Clock::now() >= spec.kill_at) {
      ::kill(-pid, SIGKILL);
      *killed = true;
    }
    pollfd fds[3];
    nfds_t n = 0;
    if (pipes->out_fd() >= 0) fds[n++] = {pipes->out_fd(), POLLIN, 0};
    if (pipes->err_fd() >= 0) fds[n++] = {pipes->err_fd(), POLLIN, 0};
    const bool watch_pid = !exited && pidfd >= 0;
    if (watch_pid) fds[n++] = {pidfd, POLLIN, 0};
    int timeout = exited ? MillisUntil(drain_until) : (*killed ? -1 : MillisUntil(spec.kill_at));
    if (!exited && pidfd < 0) timeout = timeout < 0 ? kExitPollMs : std::min(timeout, kExitPollMs);
    int ready = ::poll(fds, n, timeout);
    if (ready < 0 && errno != EINTR) {
      if (!exited) ::kill(-pid, SIGKILL);  // the caller's wait4 must not hang
      break;
    }
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if (fds[i].revents == 0 || fds[i].fd == pidfd) continue;
      pipes->ReadFrom(fds[i].fd);
    }
    if (!exited && (watch_pid ? (ready > 0 && (fds[n - 1].revents & POLLIN)) : HasExited(pid))) {
      exited = true;
      ::kill(-pid, SIGKILL);  // helpers it left behind; the zombie keeps the group id reserved
      drain_until = Clock::now() + kDrainAfterExit;
    }
    if (exited && (!pipes->open() || Clock::now() >= drain_until)) break;
  }
}

}  // namespace

Result<ChildOutcome> RunChild(const ChildSpec& spec) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Errno("pipe");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    Status s = Errno("pipe");
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return s;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  Collector pipes(out_pipe[0], err_pipe[0], spec.tee_stderr);
  auto close_child_ends = [&] {
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    if (null_fd >= 0) ::close(null_fd);
  };
  if (null_fd < 0) {
    Status s = Errno("open /dev/null");
    close_child_ends();
    return s;
  }

  std::fflush(nullptr);  // or the child would write the parent's buffered output again
  const Clock::time_point start = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    Status s = Status::ResourceExhausted(std::string("fork: ") + std::strerror(errno));
    close_child_ends();
    return s;
  }
  if (pid == 0) ChildMain(spec, null_fd, out_pipe[1], err_pipe[1]);
  ::setpgid(pid, pid);  // also here, so the group exists before the parent may signal it
  close_child_ends();

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool killed = false;
  Supervise(pid, pidfd, spec, &pipes, &killed);
  if (pidfd >= 0) ::close(pidfd);

  ChildOutcome out;
  rusage usage{};
  while (::wait4(pid, &out.wait_status, 0, &usage) < 0 && errno == EINTR) {
  }
  out.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  out.killed_at_deadline = killed && WIFSIGNALED(out.wait_status);
  out.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux: KiB
  out.cpu_seconds = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
                    usage.ru_stime.tv_usec * 1e-6;
  pipes.Finish(&out);
  return out;
}

}  // namespace virga::lambda
