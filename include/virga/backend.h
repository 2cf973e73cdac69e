// Compute backends: where worker functions run.
//
// Backends are chosen by name (see MakeBackend below): "local" runs each
// function as a process on this machine; each backend has its own options
// struct and the settings that fill it.
//
// A function is launched with a payload (opaque text, the worker's JSON spec)
// and limits; the backend tracks its state, can kill it, and reports its
// resource use when it ends. The embedded default, the `local` backend, runs
// each function as a separate OS process (`virga worker --payload FILE`) with
// function-like limits: an address-space cap, a wall-clock lifetime after
// which it is killed, and an optional random start delay (a cold start).
//
// The function learns its limits from its environment:
//   VIRGA_FUNCTION_ID           decimal id given by the backend
//   VIRGA_FUNCTION_LIFETIME_MS  wall-clock lifetime from its start (after the delay); 0 = none
//   VIRGA_FUNCTION_MEMORY_MB    memory cap; 0 = none
// so a worker can stop cleanly before it is killed.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga {

enum class FunctionState : uint8_t {
  kStarting,  // launched, in its start delay or not yet running
  kRunning,
  kSucceeded,    // exited 0
  kFailed,       // exited non-zero or died of a signal it was not sent by the backend
  kKilled,       // stopped by Kill()
  kTimedOut,     // stopped by the backend at the end of its lifetime
  kOutOfMemory,  // exceeded its memory cap (exit code kExitOutOfMemory, or allocation failure)
};
const char* FunctionStateName(FunctionState state);  // "starting", "running", "succeeded", ...
bool IsTerminal(FunctionState state);

// Exit code a function uses when an allocation failed under its memory cap.
inline constexpr int kExitOutOfMemory = 86;

struct FunctionLimits {
  // Address-space cap (RLIMIT_AS); 0 = none.
  uint64_t memory_mb = 3072;
  // Killed (kTimedOut) this long after it starts (after the start delay); 0 = none.
  std::chrono::milliseconds lifetime{900'000};
  // It starts after a uniform random delay in [0, max_start_delay] (a cold start).
  std::chrono::milliseconds max_start_delay{0};
  // Free text shown in listings (e.g. "job-3/w2").
  std::string label;
};

struct FunctionInfo {
  uint64_t id = 0;
  std::string label;
  FunctionState state = FunctionState::kStarting;
  int pid = 0;          // 0 before it starts
  int exit_code = -1;   // when it exited normally
  int term_signal = 0;  // when it died of a signal
  // Human-readable end reason: "exit 1", "signal 11 (Segmentation fault)", "killed",
  // "lifetime 5 s reached", "out of memory (exit 86, cap 3072 MB)", ...
  std::string reason;
  double wall_seconds = 0;      // from start (after the delay) to end, or to now while running
  uint64_t peak_rss_bytes = 0;  // when it has ended (from the kernel's rusage)
  double cpu_seconds = 0;       // user + system, when it has ended
  // memory_mb / 1024 * wall_seconds, as cloud functions bill (0 when it has no memory cap).
  double gb_seconds = 0;
  // Its stdout (the worker's result JSON) when it has ended, capped at 1 MiB.
  std::string output;
  bool output_truncated = false;  // its stdout was longer than the cap
  std::string error_tail;         // last 4 KiB of its stderr, when it has ended
  std::chrono::system_clock::time_point launched_at{};
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;
  virtual std::string_view name() const = 0;  // "local"
  // Functions a job keeps alive when it does not say (TrainOptions::workers 0).
  // A function service gives each its own CPU: 4. Local processes share this
  // machine with the embedded server: more of them than CPUs only queue.
  virtual uint32_t DefaultWorkers() const { return 4; }

  // Starts a function; returns its id at once (the start delay runs in the
  // background). Errors (e.g. the worker binary is missing) are returned here
  // when detectable, otherwise the function ends kFailed with a reason.
  virtual Result<uint64_t> Launch(std::string_view payload, const FunctionLimits& limits) = 0;
  // NotFound for an unknown id.
  virtual Result<FunctionInfo> Query(uint64_t id) = 0;
  // Stops a function (SIGKILL for local processes); it ends kKilled. Returns at
  // once: Wait() observes the end. OK if it has already ended. NotFound for an
  // unknown id.
  virtual Status Kill(uint64_t id) = 0;
  // Blocks until the function is terminal or `timeout` passes; returns its
  // info either way (check IsTerminal(info.state)).
  virtual Result<FunctionInfo> Wait(uint64_t id, std::chrono::milliseconds timeout) = 0;
  // Every function launched by this backend and not forgotten, oldest first.
  // Cheap enough to call often: `output` and `error_tail` are left empty
  // (Query or Wait return them).
  virtual std::vector<FunctionInfo> List() = 0;
  // Forgets an ended function (its info and files). A function that has not
  // ended, or an unknown id, is left alone.
  virtual void Forget(uint64_t id) = 0;
};

namespace internal {
// True in AddressSanitizer / ThreadSanitizer / MemorySanitizer builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif
}  // namespace internal

struct LocalBackendOptions {
  // Path of the `virga` executable (no PATH search).
  std::string worker_binary;
  // Arguments before "--payload", FILE.
  std::vector<std::string> worker_args{"worker"};
  // Payload, stdout and stderr files; "" = a fresh temp dir, removed with the backend.
  std::string work_dir;
  // Start-delay randomness; 0 = from the clock.
  uint64_t seed = 0;
  // Apply FunctionLimits::memory_mb as RLIMIT_AS. Sanitizer builds of the worker cannot start
  // under such a cap (they reserve terabytes of address space), so those builds default to
  // false: the cap is then only announced (VIRGA_FUNCTION_MEMORY_MB) and billed (gb_seconds).
  bool enforce_memory_cap = !internal::kSanitizedBuild;
};

// The embedded default. Each function is the process
//   <worker_binary> <worker_args...> --payload <work_dir>/fn-<id>.json
// with stdout in fn-<id>.out, stderr in fn-<id>.err, stdin /dev/null, the
// backend's environment plus the VIRGA_FUNCTION_* variables, no inherited
// file descriptors beyond 0-2, and its own process group: Kill, the lifetime
// and the end of the function all SIGKILL the whole group, so helpers it
// forked die with it (unless they called setsid()).
//
// A function ends kOutOfMemory when it exits kExitOutOfMemory, or when it
// fails under a memory cap and its stderr tail reports an allocation failure
// (std::bad_alloc, MemoryError, "out of memory", ...).
//
// REQUIRES: nothing else in the process reaps the backend's children
// (waitpid(-1, ...), or SIGCHLD set to SIG_IGN); such a function ends
// kFailed with reason "reaped elsewhere".
//
// On destruction, kills every function still running and reaps it, so no
// process outlives the backend, then removes the work dir if it created it.
Result<std::unique_ptr<ComputeBackend>> MakeLocalBackend(const LocalBackendOptions& options);


// ---- Backends by name ---------------------------------------------------------
//
// Every backend is registered under a name (one line in the table of
// src/backend/backend_registry.cc) with the settings it understands. A
// setting's value is text; its name, in snake_case, is also the keyword of
// the Python virga.connect() and, prefixed with the backend's name, the CLI
// flag (--local-worker-binary). A setting not given is read from its
// environment variable, if it has one, else it keeps its default. The
// backend parses its settings into its own options struct
// (LocalBackendOptions for "local").

// Which backend runs a job's functions, and how it is set up.
struct BackendConfig {
  // A registered backend name; empty: DefaultBackendName().
  std::string name;
  // Setting name -> value, for that backend only.
  std::map<std::string, std::string> settings;
};

// One setting of a backend, as flags, keywords and help text show it.
struct BackendSetting {
  std::string_view name;  // "worker_binary"
  std::string_view env;   // environment variable read when not given ("VIRGA_BINARY"); "" none
  std::string_view help;  // one line, the default included
};

struct BackendDescription {
  std::string_view name;  // "local"
  std::string_view help;  // one line
  std::span<const BackendSetting> settings;
};

// Every registered backend, in table order.
std::span<const BackendDescription> RegisteredBackends();

// The backend used when none is named: $VIRGA_BACKEND if set and non-empty,
// else "local".
std::string DefaultBackendName();

// Checks `config` without creating anything: the name is registered, every
// setting is one of its backend's and its value parses (environment
// variables included). InvalidArgument naming the problem: an unknown name
// lists the known backends ("unknown compute backend 'x' (known: local)"),
// an unknown setting lists the backend's settings.
Status CheckBackendConfig(const BackendConfig& config);

// Creates the backend `config` names, set up from its settings; the errors of
// CheckBackendConfig, or the backend's own.
Result<std::unique_ptr<ComputeBackend>> MakeBackend(const BackendConfig& config);

}  // namespace virga
