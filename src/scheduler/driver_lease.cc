#include "scheduler/driver_lease.h"

#include <unistd.h>

#include "virga/worker.h"

namespace virga::sched {

DriverLease::DriverLease(std::unique_ptr<PsClient> client, std::string job,
                         std::chrono::milliseconds interval)
    : client_(std::move(client)), key_(JobDriverKey(job)), interval_(interval) {
  first_ = client_->Put(key_, std::to_string(::getpid()) + " 0").status();
  thread_ = std::thread([this] { Loop(); });
}

DriverLease::~DriverLease() { Stop(); }

void DriverLease::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  (void)client_->Delete(key_);
}

void DriverLease::Loop() {
  const std::string pid = std::to_string(::getpid()) + " ";
  for (uint64_t n = 1;; ++n) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, interval_, [&] { return stop_; })) return;
    }
    // A failed write (the server restarting) is retried at the next turn:
    // workers tolerate kDriverLeaseTimeout without a change.
    (void)client_->Put(key_, pid + std::to_string(n));
  }
}

}  // namespace virga::sched
