// PauseGate: lets a checkpoint stop every state-changing request for an
// instant, so that what it copies (tables, KV, queues) is one cut.
//
// Requests Enter() before touching the state and Exit() after; Pause() waits
// for those inside to leave and holds new ones at Enter() until Resume().
// The fast path (no pause) is two atomic read-modify-writes and one load per
// request, no lock. Enter and Pause are sequentially consistent on two
// atomics (each writes its own, then reads the other's), so either the
// request sees the pause and waits, or the pause sees the request and waits
// for it to leave. Thread-safe; one Pause at a time (callers serialize them).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace virga::ps {

class PauseGate {
 public:
  void Enter() {
    for (;;) {
      active_.fetch_add(1);
      if (!paused_.load()) return;
      Exit();  // a pause is on: step back and wait for its end
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !paused_.load(); });
    }
  }
  void Exit() {
    if (active_.fetch_sub(1) == 1 && paused_.load()) {
      std::lock_guard<std::mutex> l(mu_);  // the pauser waits under mu_: no lost wake-up
      cv_.notify_all();
    }
  }
  // Returns once no request is inside; new ones wait until Resume().
  void Pause() {
    paused_.store(true);
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return active_.load() == 0; });
  }
  void Resume() {
    {
      std::lock_guard<std::mutex> l(mu_);
      paused_.store(false);
    }
    cv_.notify_all();
  }

  // Pause() for a scope.
  class Paused {
   public:
    explicit Paused(PauseGate& g) : g_(g) { g_.Pause(); }
    ~Paused() { g_.Resume(); }
    Paused(const Paused&) = delete;
    Paused& operator=(const Paused&) = delete;

   private:
    PauseGate& g_;
  };

 private:
  std::atomic<uint64_t> active_{0};
  std::atomic<bool> paused_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace virga::ps
