// Control: the time budget and stop state a worker's threads share, and the
// retry-with-backoff rule for server calls.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga {
class PsClient;
}  // namespace virga

namespace virga::worker {

using Clock = std::chrono::steady_clock;

// Faults worth retrying: the server may come back (restart, network blip).
inline bool IsTransient(const Status& s) {
  using C = Status::Code;
  return s.code() == C::kUnavailable || s.code() == C::kDeadlineExceeded ||
         s.code() == C::kIOError || s.code() == C::kCorruption;
}

// Why a worker stops (first reason wins).
enum class StopReason : int { kNone = 0, kLifetime, kStopped, kIdle, kError, kKilled, kOrphaned };

// Whether the job's stop key or this function's kill key is set: kStopped,
// kKilled, or kNone (absent, or the check failed: *fault is then set).
StopReason CheckStopKeys(virga::PsClient* client, const std::string& stop_key,
                         const std::string& kill_key, bool* fault);

// Claims function `id` of `job` for this invocation (the claim key of
// include/virga/worker.h, compare-and-swap from absent): false if another
// delivery of the same function holds the claim; it is then counted in the
// job's duplicates. Id 0 (not launched by a backend) always claims.
Result<bool> ClaimFunction(virga::PsClient* client, std::string_view job, uint64_t id);

// Thread-safe.
class Control {
 public:
  // stop_at: when the worker must wind down (lifetime minus margin);
  // Clock::time_point::max() for none. max_fault: retries give up after
  // this long without a success.
  Control(Clock::time_point stop_at, std::chrono::milliseconds max_fault)
      : stop_at_(stop_at), max_fault_(max_fault) {}

  Clock::time_point stop_at() const { return stop_at_; }
  bool Expired(Clock::time_point now = Clock::now()) const { return now >= stop_at_; }

  // Records the reason (if none yet) and wakes every sleeper.
  void RequestStop(StopReason why, std::string error = {}) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (reason_ == StopReason::kNone) {
        reason_ = why;
        error_ = std::move(error);
      }
      stop_.store(true, std::memory_order_relaxed);
    }
    cv_.notify_all();
  }
  bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }
  StopReason reason() const {
    std::lock_guard<std::mutex> l(mu_);
    return reason_;
  }
  std::string error() const {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }

  // Sleeps for d; false (early) if a stop was requested or the stop time came.
  bool SleepFor(Clock::duration d) {
    const Clock::time_point until = std::min(stop_at_, Clock::now() + d);
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_until(l, until, [&] { return stop_.load(std::memory_order_relaxed); });
    return !stop_.load(std::memory_order_relaxed) && !Expired();
  }

  // Calls `call` (returning Status) until it is OK or fails with a
  // non-transient status; transient faults are retried with a 10 ms .. 500
  // ms backoff until the stop time or max_fault after the first fault, and
  // counted in *faults. Returns the last status.
  template <typename Call>
  Status Retry(Call&& call, std::atomic<uint64_t>* faults) {
    Status s = call();
    if (s.ok() || !IsTransient(s)) return s;
    const Clock::time_point give_up = Clock::now() + max_fault_;
    auto backoff = std::chrono::milliseconds(10);
    for (;;) {
      faults->fetch_add(1, std::memory_order_relaxed);
      if (Clock::now() + backoff >= give_up || !SleepFor(backoff)) return s;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
      s = call();
      if (s.ok() || !IsTransient(s)) return s;
    }
  }

 private:
  const Clock::time_point stop_at_;
  const std::chrono::milliseconds max_fault_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};         // written under mu_
  StopReason reason_ = StopReason::kNone;  // GUARDED_BY(mu_)
  std::string error_;                      // GUARDED_BY(mu_)
};

}  // namespace virga::worker
