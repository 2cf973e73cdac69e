#include "worker/send_schedule.h"

#include <gtest/gtest.h>

#include <random>

namespace virga::worker {
namespace {

using Mode = SendSchedule::Mode;
using std::chrono::nanoseconds;

// Runs `iterations` with per-mode costs (plus rare large outliers) and
// returns the mode in force at the end.
Mode Drive(SendSchedule* s, uint64_t iterations, int64_t early_ns, int64_t with_push_ns,
           std::mt19937* rng) {
  for (uint64_t i = 0; i < iterations; ++i) {
    int64_t ns = s->mode() == Mode::kEarly ? early_ns : with_push_ns;
    ns += static_cast<int64_t>((*rng)() % 2000);        // jitter
    if ((*rng)() % 200 == 0) ns += 3'000'000;           // a preemption now and then
    s->Record(nanoseconds(ns));
  }
  return s->mode();
}

TEST(SendSchedule, KeepsTheFasterModeAndFollowsAChange) {
  std::mt19937 rng(1);
  SendSchedule s;
  EXPECT_TRUE(s.probing());
  const uint64_t probe = 2ull * SendSchedule::kBlock * SendSchedule::kProbeBlocks;
  EXPECT_EQ(Drive(&s, probe, 60'000, 40'000, &rng), Mode::kWithPush);
  EXPECT_FALSE(s.probing());
  EXPECT_EQ(s.probes(), 1u);
  // Exploits it, then the placement changes: the next probe switches.
  EXPECT_EQ(Drive(&s, SendSchedule::kExploit - 1, 60'000, 40'000, &rng), Mode::kWithPush);
  EXPECT_EQ(Drive(&s, 1 + probe, 30'000, 45'000, &rng), Mode::kEarly);
  EXPECT_EQ(s.probes(), 2u);
}

TEST(SendSchedule, ProbeAlternatesBlocks) {
  SendSchedule s;
  int switches = 0;
  Mode last = s.mode();
  for (uint32_t i = 0; i < 2 * SendSchedule::kBlock * SendSchedule::kProbeBlocks; ++i) {
    s.Record(nanoseconds(1000));
    if (s.probing() && s.mode() != last) ++switches;
    last = s.mode();
  }
  EXPECT_EQ(switches, 2 * static_cast<int>(SendSchedule::kProbeBlocks) - 1);
}

}  // namespace
}  // namespace virga::worker
