// The CPUs this process may run on: its affinity mask (taskset, cgroup cpusets),
// else the online CPUs; at least 1.
#pragma once

#include <sched.h>
#include <unistd.h>

namespace virga {

inline unsigned UsableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1u;
}

}  // namespace virga
