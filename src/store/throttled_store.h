// ThrottledStore: a decorator that makes any ObjectStore behave like a cloud
// object store as seen from one cloud function (S3: ~10 ms per request,
// ~60 MB/s per function), so that local runs and benchmarks show the cost of
// the data path that a deployment would pay.
//
// Every request (Put, Get, GetRange, List, Delete, Exists, Stat) first waits
// `latency`, in the calling thread, concurrently with other requests. The
// payload bytes moved (read by Get/GetRange, written by Put) then pass a
// ThrottleLink: a pipe of `bandwidth_bytes_per_s` that concurrent transfers
// share, so N parallel Gets together move bytes no faster than one. All
// stores throttled to the same bandwidth in one process share one link (a
// function's bandwidth is per function, i.e. per process).
//
// Opened by ObjectStore::Open through MaybeThrottle when the environment asks
// for it:
//   VIRGA_STORE_LATENCY_MS=10 VIRGA_STORE_BANDWIDTH_MBPS=60 virga ...
//
// Thread safety: as ObjectStore; the counters may be read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "virga/object_store.h"

namespace virga {

struct ThrottleOptions {
  std::chrono::nanoseconds latency{0};  // waited before every request (time to first byte)
  double bandwidth_bytes_per_s = 0;     // cap on payload bytes moved, shared per process;
                                        // 0 = no cap
};

// Reads VIRGA_STORE_LATENCY_MS (milliseconds, >= 0, fractions allowed) and
// VIRGA_STORE_BANDWIDTH_MBPS (MB/s, 1 MB = 1e6 bytes, > 0). Sets *set to
// whether either is set (an empty value counts as unset). A value that is not
// such a number is InvalidArgument naming the variable.
Result<ThrottleOptions> ThrottleOptionsFromEnv(bool* set);

// Returns `inner` wrapped in a ThrottledStore configured from the environment
// (above), or `inner` unchanged when neither variable is set.
Result<std::shared_ptr<ObjectStore>> MaybeThrottle(std::shared_ptr<ObjectStore> inner);
// The same on the result of opening a store; a failed open passes through.
Result<std::shared_ptr<ObjectStore>> MaybeThrottle(Result<std::shared_ptr<ObjectStore>> opened);

// The time source of a throttle. Tests inject a fake one whose SleepUntil
// advances its clock, to check the arithmetic without waiting.
class ThrottleClock {
 public:
  virtual ~ThrottleClock() = default;
  virtual std::chrono::nanoseconds Now() = 0;  // monotonic
  virtual void SleepUntil(std::chrono::nanoseconds deadline) = 0;
  // steady_clock and a real sleep. Never destroyed.
  static ThrottleClock* Real();
};

// A pipe of fixed bandwidth shared by concurrent transfers: a token bucket
// with no burst. The pipe is booked until busy_until_; a transfer of n bytes
// books the next n / rate seconds after that (or after now, if the pipe is
// idle) and its caller sleeps until its booking ends.
class ThrottleLink {
 public:
  ThrottleLink(double bytes_per_s, ThrottleClock* clock);

  // The process's link of this bandwidth: one per distinct rate, never
  // destroyed, on the real clock.
  static std::shared_ptr<ThrottleLink> ForProcess(double bytes_per_s);

  // Books `bytes` on the pipe and returns when they have passed; returns
  // the time slept.
  std::chrono::nanoseconds Transfer(uint64_t bytes);

  double bytes_per_s() const { return bytes_per_s_; }

 private:
  const double bytes_per_s_;
  ThrottleClock* const clock_;
  std::mutex mu_;
  std::chrono::nanoseconds busy_until_{0};  // GUARDED_BY(mu_)
};

// What a ThrottledStore did so far.
struct ThrottleStats {
  uint64_t requests = 0;              // every call, failed ones included
  uint64_t bytes_read = 0;            // payload bytes returned by Get/GetRange
  uint64_t bytes_written = 0;         // payload bytes passed to Put
  std::chrono::nanoseconds slept{0};  // latency + bandwidth waits, summed over threads
};

class ThrottledStore final : public ObjectStore {
 public:
  // `clock` null: ThrottleClock::Real(); else it must outlive the store.
  // `link` null: ThrottleLink::ForProcess(options.bandwidth_bytes_per_s), or
  // a link of this store's own on `clock` when a clock is given; no link
  // when that bandwidth is 0. REQUIRES: inner != null.
  ThrottledStore(std::shared_ptr<ObjectStore> inner, ThrottleOptions options,
                 std::shared_ptr<ThrottleLink> link = nullptr, ThrottleClock* clock = nullptr);

  std::string uri() const override { return inner_->uri(); }
  Status Put(std::string_view key, std::string_view data) override;
  Status Get(std::string_view key, std::string* out) override;
  Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                  std::string* out) override;
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;
  Result<bool> Exists(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;

  ThrottleStats stats() const;
  const ThrottleOptions& options() const { return options_; }
  ObjectStore& inner() const { return *inner_; }

 private:
  void Request();  // counts a request and waits its latency
  void Moved(uint64_t bytes, std::atomic<uint64_t>* counter);  // passes bytes through the link
  void Slept(std::chrono::nanoseconds d);

  const std::shared_ptr<ObjectStore> inner_;
  const ThrottleOptions options_;
  const std::shared_ptr<ThrottleLink> link_;  // null: no bandwidth cap
  ThrottleClock* const clock_;

  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_written_{0};
  std::atomic<int64_t> slept_ns_{0};
};

}  // namespace virga
