// Counts heap allocations made by the calling thread, so tests can check that
// a hot path allocates nothing. Linking alloc_counter_test_util.cc into a test
// binary replaces the global operator new for that whole binary.
#pragma once

#include <cstdint>

namespace virga_test {

// operator new calls made so far by this thread.
uint64_t ThreadAllocations();

}  // namespace virga_test
