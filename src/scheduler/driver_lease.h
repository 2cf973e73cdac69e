// DriverLease: a job driver's proof of life for its workers.
//
// A thread rewrites <job>/driver (include/virga/worker.h) every `interval`
// with "<pid> <n>" through a PsClient of its own, until Stop() (or the
// destructor), which deletes the key. Workers whose payload has
// driver_timeout_ms > 0 stop ("orphaned") once the value stops changing, so
// a driver that dies (SIGKILL, a closed terminal, a crashed machine) takes
// its functions with it on every backend. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "virga/ps_client.h"

namespace virga::sched {

// Rewrites of the lease, and how long workers wait for the next one before
// they stop. The timeout leaves room for five missed rewrites (a busy server,
// a slow machine) and still ends orphans within ~2 s of their driver.
inline constexpr std::chrono::milliseconds kDriverLeaseInterval{250};
inline constexpr std::chrono::milliseconds kDriverLeaseTimeout{1500};

class DriverLease {
 public:
  // Starts the thread; the first write is made before the constructor returns
  // (Status of that write in status()) so functions launched next find it.
  DriverLease(std::unique_ptr<PsClient> client, std::string job,
              std::chrono::milliseconds interval = kDriverLeaseInterval);
  ~DriverLease();
  DriverLease(const DriverLease&) = delete;
  DriverLease& operator=(const DriverLease&) = delete;

  // Ends the thread and deletes the key (best effort). Idempotent.
  void Stop();
  const Status& status() const { return first_; }

 private:
  void Loop();

  const std::unique_ptr<PsClient> client_;
  const std::string key_;
  const std::chrono::milliseconds interval_;
  Status first_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace virga::sched
