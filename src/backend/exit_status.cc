#include "backend/exit_status.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace virga::backend {
namespace {

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

}  // namespace

std::string SignalReason(int sig) {
  const char* descr = ::sigdescr_np(sig);  // thread-safe, unlike strsignal()
  if (descr == nullptr) return fmt::format("signal {}", sig);
  return fmt::format("signal {} ({})", sig, descr);
}

std::string LifetimeReason(std::chrono::milliseconds lifetime) {
  return fmt::format("lifetime {:g} s reached", static_cast<double>(lifetime.count()) / 1000.0);
}

bool LooksLikeAllocationFailure(std::string_view stderr_tail) {
  static constexpr std::array<std::string_view, 7> kPatterns = {
      "bad_alloc",        "MemoryError",        "out of memory",     "Cannot allocate memory",
      "memory exhausted", "failed to allocate", "allocation failed",
  };
  for (std::string_view p : kPatterns) {
    if (ContainsIgnoreCase(stderr_tail, p)) return true;
  }
  return false;
}

ExitOutcome ClassifyExit(int wait_status, StopCause stop, uint64_t memory_mb,
                         std::chrono::milliseconds lifetime, std::string_view stderr_tail) {
  ExitOutcome out;
  std::string how;  // "exit 3" or "signal 6 (Aborted)"
  if (WIFEXITED(wait_status)) {
    out.exit_code = WEXITSTATUS(wait_status);
    how = fmt::format("exit {}", out.exit_code);
  } else if (WIFSIGNALED(wait_status)) {
    out.term_signal = WTERMSIG(wait_status);
    how = SignalReason(out.term_signal);
  } else {
    how = fmt::format("wait status {:#x}", wait_status);
  }

  // Our own SIGKILL explains a death by signal; a process that exited on its
  // own first keeps its own outcome.
  if (out.term_signal != 0 && stop != StopCause::kNone) {
    switch (stop) {
      case StopCause::kKill:
        out.state = FunctionState::kKilled;
        out.reason = "killed";
        return out;
      case StopCause::kShutdown:
        out.state = FunctionState::kKilled;
        out.reason = "killed: backend shut down";
        return out;
      case StopCause::kLifetime:
        out.state = FunctionState::kTimedOut;
        out.reason = LifetimeReason(lifetime);
        return out;
      case StopCause::kNone:
        break;
    }
  }
  if (out.exit_code == kExitOutOfMemory) {
    out.state = FunctionState::kOutOfMemory;
    out.reason = memory_mb > 0
                     ? fmt::format("out of memory (exit {}, cap {} MB)", out.exit_code, memory_mb)
                     : fmt::format("out of memory (exit {})", out.exit_code);
    return out;
  }
  if (out.exit_code == 0) {
    out.state = FunctionState::kSucceeded;
    out.reason = how;
    return out;
  }
  if (memory_mb > 0 && LooksLikeAllocationFailure(stderr_tail)) {
    out.state = FunctionState::kOutOfMemory;
    out.reason =
        fmt::format("out of memory: allocation failed under the {} MB cap ({})", memory_mb, how);
    return out;
  }
  out.state = FunctionState::kFailed;
  out.reason = std::move(how);
  return out;
}

}  // namespace virga::backend
