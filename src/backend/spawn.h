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
};

// Forks and execs `spec`. The child leads a new process group (its pgid is
// its pid), reads /dev/null, inherits no descriptor beyond 0-2, has an empty
// signal mask and default SIGPIPE/SIGCHLD handling. If exec fails the child
// writes why to its stderr and exits 127. Returns the child's pid; the caller
// must reap it. Thread-safe (all allocation happens before fork()).
Result<pid_t> SpawnProcess(const SpawnSpec& spec);

// The current environment without the variables named in `overrides`, then
// `overrides` as "NAME=value".
std::vector<std::string> EnvironmentWith(
    const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace virga::backend
