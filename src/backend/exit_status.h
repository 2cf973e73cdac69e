// How the end of a local function process maps to a FunctionState and a
// human-readable reason. Pure functions: no processes, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "virga/backend.h"

namespace virga::backend {

// What the backend itself did to the process before it ended. The first stop
// sent wins: a function killed and then past its lifetime ends kKilled.
enum class StopCause : uint8_t { kNone, kKill, kLifetime, kShutdown };

struct ExitOutcome {
  FunctionState state = FunctionState::kFailed;
  int exit_code = -1;   // when it exited normally
  int term_signal = 0;  // when it died of a signal
  std::string reason;
};

// `wait_status` as filled by wait4(). `memory_mb` is the cap (0 = none) and
// `lifetime` the configured lifetime; `stderr_tail` the end of its stderr,
// searched for allocation-failure messages when it failed under a cap.
ExitOutcome ClassifyExit(int wait_status, StopCause stop, uint64_t memory_mb,
                         std::chrono::milliseconds lifetime, std::string_view stderr_tail);

// "signal 11 (Segmentation fault)".
std::string SignalReason(int sig);
// "lifetime 5 s reached", "lifetime 0.3 s reached".
std::string LifetimeReason(std::chrono::milliseconds lifetime);
// True when the text reports a failed allocation (std::bad_alloc, Python's
// MemoryError, "out of memory", ENOMEM's "Cannot allocate memory", ...).
bool LooksLikeAllocationFailure(std::string_view stderr_tail);

}  // namespace virga::backend
