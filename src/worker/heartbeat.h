// Heartbeat: a worker's liveness thread, independent of its training loop.
//
// Every `interval` (500 ms by default) it writes <job>/hb/<id> (a counter:
// the scheduler replaces a function whose heartbeat stops changing, e.g. a
// SIGSTOPped one), and every `poll` (100 ms; at most `interval`) it reads the
// job's stop key, the function's kill key and the driver's lease <job>/driver
// (a job that reached its target stops its workers within about `poll`)
// (include/virga/worker.h). It requests a stop on the stop or kill key, and
// StopReason::kOrphaned once the driver's lease has been seen unchanged (or
// absent) for payload.driver_timeout_ms, measured on this worker's clock, so
// no clock is shared with the driver. A failed read is no evidence either way:
// the lease only expires on values actually read (a server being restarted
// does not orphan its workers).
//
// Owns its PsClient (clients are not thread-safe); talks to Control only
// through its thread-safe calls. Once a stop is requested it only beats (the
// worker is winding down); the thread ends at the destructor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "virga/ps_client.h"
#include "virga/worker.h"
#include "worker/control.h"

namespace virga::worker {

// The driver-lease rule, apart from the thread so it can be tested alone:
// Observe() each read value (nullopt: the key is absent) with the time it was
// read; true once the value has not changed for `timeout`.
class DriverWatch {
 public:
  explicit DriverWatch(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  bool Observe(const std::optional<std::string>& value, Clock::time_point now);

 private:
  const std::chrono::milliseconds timeout_;
  bool seen_ = false;
  std::optional<std::string> last_;
  Clock::time_point changed_at_{};
};

class Heartbeat {
 public:
  Heartbeat(const WorkerPayload& payload, std::unique_ptr<PsClient> client, Control* control,
            uint64_t function_id,
            std::chrono::milliseconds interval = std::chrono::milliseconds(500),
            std::chrono::milliseconds poll = std::chrono::milliseconds(100));
  ~Heartbeat();  // stops the thread and joins it
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  uint64_t faults() const { return faults_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  // One turn: the beat (if `beat` > 0) and the control keys. Returns a reason
  // to stop, or kNone.
  StopReason Turn(uint64_t beat, DriverWatch* driver);

  const std::unique_ptr<PsClient> client_;
  Control* const control_;
  const std::chrono::milliseconds interval_, poll_;
  const std::chrono::milliseconds driver_timeout_;
  const std::string beat_key_, stop_key_, kill_key_, driver_key_;
  std::atomic<uint64_t> faults_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace virga::worker
