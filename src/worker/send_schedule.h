// When the worker sends the next minibatch's pull (pipelined training).
//
//   kEarly:    as soon as its keys are known, before this minibatch's
//              gradient: the server works on it during the compute. Best
//              when the server has a CPU of its own (or is across a network).
//   kWithPush: held and written with this minibatch's push, one sendmsg:
//              the server wakes once per iteration instead of twice. Best
//              when worker and server share a CPU, where every wake-up of
//              the server preempts the worker (two context switches each).
//
// Which one is faster depends on where the processes run, which the worker
// cannot see, so it measures: a probe alternates blocks of kBlock iterations
// of each schedule until each has kProbeBlocks blocks, keeps kWithPush if
// its lower-quartile block time is below kEarly's by more than 2% (a
// quantile, not the mean: a preemption by another process only ever adds
// time, and spoils a block, not the choice), runs it for kExploit
// iterations, then probes again. Allocation: none.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

namespace virga::worker {

class SendSchedule {
 public:
  enum class Mode : uint8_t { kEarly, kWithPush };
  static constexpr uint32_t kBlock = 32;         // iterations per timed block
  static constexpr uint32_t kProbeBlocks = 16;   // blocks of each mode per probe
  static constexpr uint32_t kExploit = 1 << 14;  // iterations between probes

  SendSchedule() = default;
  // Always `mode`: no measuring.
  explicit SendSchedule(Mode mode) : mode_(mode), probing_(false), fixed_(true) {}

  Mode mode() const { return mode_; }
  bool probing() const { return probing_; }
  uint64_t probes() const { return probes_; }

  // Records one iteration run with mode() that took `took`.
  void Record(std::chrono::nanoseconds took) {
    if (fixed_) return;
    if (!probing_) {
      if (++exploited_ >= kExploit) StartProbe();
      return;
    }
    block_ns_ += static_cast<uint64_t>(took.count());
    if (++in_block_ < kBlock) return;
    const auto m = static_cast<size_t>(mode_);
    blocks_[m][filled_[m]++] = block_ns_;
    in_block_ = 0;
    block_ns_ = 0;
    if (filled_[0] == kProbeBlocks && filled_[1] == kProbeBlocks) {
      const double early = static_cast<double>(Quartile(blocks_[0]));
      const double with_push = static_cast<double>(Quartile(blocks_[1]));
      mode_ = with_push < 0.98 * early ? Mode::kWithPush : Mode::kEarly;
      probing_ = false;
      exploited_ = 0;
      ++probes_;
      return;
    }
    mode_ = mode_ == Mode::kEarly ? Mode::kWithPush : Mode::kEarly;  // alternate
  }

 private:
  void StartProbe() {
    probing_ = true;
    filled_ = {0, 0};
    in_block_ = 0;
    block_ns_ = 0;
    mode_ = Mode::kEarly;
  }
  static uint64_t Quartile(std::array<uint64_t, kProbeBlocks> v) {  // the lower one
    std::nth_element(v.begin(), v.begin() + kProbeBlocks / 4, v.end());
    return v[kProbeBlocks / 4];
  }

  Mode mode_ = Mode::kEarly;
  bool probing_ = true;
  bool fixed_ = false;
  uint32_t in_block_ = 0;
  uint64_t block_ns_ = 0;
  uint32_t exploited_ = 0;
  uint64_t probes_ = 0;
  std::array<uint32_t, 2> filled_{0, 0};
  std::array<std::array<uint64_t, kProbeBlocks>, 2> blocks_{};
};

}  // namespace virga::worker
