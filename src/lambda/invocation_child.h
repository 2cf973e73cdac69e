// Running one invocation in a forked child process: its own copy of the
// runtime's memory (so nothing one run changes is seen by the next), its
// stdout and stderr captured through pipes, killed with its whole process
// group at a deadline, its resource use read from the kernel.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "virga/status.h"

namespace virga::lambda {

struct ChildSpec {
  // Runs in the child after fork(); its return value is the exit code. The
  // child ends with _exit() after flushing stdio: no static destructors or
  // atexit handlers of the parent run there.
  std::function<int()> body;
  // Set in the child's environment (on top of the parent's); an empty value
  // unsets the variable.
  std::vector<std::pair<std::string, std::string>> env;
  // RLIMIT_AS of the child (soft and hard); 0 = inherit.
  uint64_t memory_mb = 0;
  // The child and its process group are SIGKILLed at this time; max() = never.
  std::chrono::steady_clock::time_point kill_at = std::chrono::steady_clock::time_point::max();
  // Also copy the child's stderr to this process's stderr as it arrives
  // (in Lambda, the function's log).
  bool tee_stderr = false;
};

struct ChildOutcome {
  int wait_status = 0;  // as wait4() reports it
  bool killed_at_deadline = false;
  std::string output;  // stdout, its first kMaxOutputBytes
  bool output_truncated = false;
  std::string stderr_tail;  // the last kStderrTailBytes of stderr
  double wall_seconds = 0;  // fork to reap
  uint64_t peak_rss_bytes = 0;
  double cpu_seconds = 0;  // user + system
};

// Forks, runs spec.body in the child and waits for it, reading its output
// meanwhile. The child leads its own process group, reads /dev/null and has
// no descriptor beyond 0-2 open but what body opens. Once the child has
// exited, what is left of its group is killed too.
//
// REQUIRES: nothing else in the process reaps children (waitpid(-1)), and
// SIGCHLD is not ignored. Errors: a failed pipe() or fork() (ResourceExhausted
// or IOError); the child's own failures are in the outcome.
Result<ChildOutcome> RunChild(const ChildSpec& spec);

}  // namespace virga::lambda
