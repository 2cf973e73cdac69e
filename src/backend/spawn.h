// Starting one function process: fork, limits, redirections, exec.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "virga/status.h"

namespace virga::backend {

struct SpawnSpec {
  std::string binary;             // executed as is (no PATH search)
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value" entries: the whole environment
  std::string stdout_path;        // created or truncated
  std::string stderr_path;        // created or truncated
  uint64_t memory_mb = 0;         // RLIMIT_AS (soft and hard); 0 = inherit
  // Sent to the child when the thread that forked it ends (PR_SET_PDEATHSIG:
  // with the whole process, e.g. a SIGKILLed driver, or that thread alone:
  // fork from a thread that lives as long as the child should); 0 = none.
  // A child whose parent is already gone by then exits 127 at once.
  int parent_death_signal = 0;
};

// Forks and execs `spec`. The child leads a new process group (its pgid is
// its pid), reads /dev/null, writes files created 0600 (its output may quote
// its payload's secrets), inherits no descriptor beyond 0-2, has an empty
// signal mask and default SIGPIPE/SIGCHLD handling. If exec fails the child
// writes why to its stderr and exits 127. Returns the child's pid; the caller
// must reap it. Thread-safe (all allocation happens before fork()).
Result<pid_t> SpawnProcess(const SpawnSpec& spec);

// The current environment without the variables named in `overrides`, then
// `overrides` as "NAME=value".
std::vector<std::string> EnvironmentWith(
    const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace virga::backend
