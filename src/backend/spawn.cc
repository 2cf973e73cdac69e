#include "backend/spawn.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

extern char** environ;

namespace virga::backend {
namespace {

// A descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Opens `path` at a descriptor >= 3 (so the child's dup2 onto 0-2 never
// clobbers another of its redirections, even if the parent closed stdin).
Result<int> OpenAbove2(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(fmt::format("open {}: {}", path, std::strerror(errno)));
  if ((flags & O_CREAT) != 0 && ::fchmod(fd, 0600) != 0) {  // an older file kept its mode
    const int err = errno;
    ::close(fd);
    return Status::IOError(fmt::format("chmod {}: {}", path, std::strerror(err)));
  }
  if (fd > 2) return fd;
  int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  ::close(fd);
  if (high < 0) return Status::IOError(fmt::format("dup {}: {}", path, std::strerror(err)));
  return high;
}

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Runs in the child between fork() and exec(): async-signal-safe calls only.
[[noreturn]] void ExecChild(const SpawnSpec& spec, int in_fd, int out_fd, int err_fd,
                            char* const* argv, char* const* envp, const sigset_t& empty_mask,
                            pid_t parent, std::string_view exec_error) {
  ::setpgid(0, 0);
  if (spec.parent_death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, spec.parent_death_signal);
    if (::getppid() != parent) ::_exit(127);  // it died before the prctl
  }
  if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) ::_exit(127);
  ::close_range(3, ~0U, 0);
  if (spec.memory_mb > 0) {
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(spec.memory_mb) << 20;
    ::setrlimit(RLIMIT_AS, &limit);
  }
  ::signal(SIGPIPE, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  ::sigprocmask(SIG_SETMASK, &empty_mask, nullptr);
  ::execve(spec.binary.c_str(), argv, envp);
  ssize_t ignored = ::write(2, exec_error.data(), exec_error.size());
  (void)ignored;
  ::_exit(127);
}

}  // namespace

Result<pid_t> SpawnProcess(const SpawnSpec& spec) {
  VIRGA_ASSIGN_OR_RETURN(int in_raw, OpenAbove2("/dev/null", O_RDONLY));
  Fd in_fd(in_raw);
  VIRGA_ASSIGN_OR_RETURN(int out_raw, OpenAbove2(spec.stdout_path, O_WRONLY | O_CREAT | O_TRUNC));
  Fd out_fd(out_raw);
  VIRGA_ASSIGN_OR_RETURN(int err_raw, OpenAbove2(spec.stderr_path, O_WRONLY | O_CREAT | O_TRUNC));
  Fd err_fd(err_raw);

  std::vector<char*> argv = CStrings(spec.argv);
  std::vector<char*> envp = CStrings(spec.env);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  const std::string exec_error =
      fmt::format("virga local backend: cannot execute {}\n", spec.binary);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Status::ResourceExhausted(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ExecChild(spec, in_fd.get(), out_fd.get(), err_fd.get(), argv.data(), envp.data(), empty_mask,
              parent, exec_error);
  }
  // Also from the parent, so the group exists before anyone signals it; fails
  // harmlessly (EACCES) once the child has exec'd, by which time it did it itself.
  ::setpgid(pid, pid);
  return pid;
}

std::vector<std::string> EnvironmentWith(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool overridden = false;
    for (const auto& [name, value] : overrides) {
      if (entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=') {
        overridden = true;
        break;
      }
    }
    if (!overridden) env.emplace_back(entry);
  }
  for (const auto& [name, value] : overrides) env.push_back(fmt::format("{}={}", name, value));
  return env;
}

}  // namespace virga::backend
