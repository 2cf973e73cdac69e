#include "worker/heartbeat.h"

namespace virga::worker {

bool DriverWatch::Observe(const std::optional<std::string>& value, Clock::time_point now) {
  if (!seen_ || value != last_) {
    seen_ = true;
    last_ = value;
    changed_at_ = now;
    return false;
  }
  return timeout_.count() > 0 && now - changed_at_ >= timeout_;
}

Heartbeat::Heartbeat(const WorkerPayload& payload, std::unique_ptr<PsClient> client,
                     Control* control, uint64_t function_id, std::chrono::milliseconds interval,
                     std::chrono::milliseconds poll)
    : client_(std::move(client)),
      control_(control),
      interval_(interval),
      poll_(std::max(std::min(poll, interval), std::chrono::milliseconds(1))),
      driver_timeout_(payload.driver_timeout_ms),
      beat_key_(FunctionHeartbeatKey(payload.job, function_id)),
      stop_key_(JobStopKey(payload.job)),
      kill_key_(FunctionKillKey(payload.job, function_id)),
      driver_key_(JobDriverKey(payload.job)) {
  thread_ = std::thread([this] { Loop(); });
}

Heartbeat::~Heartbeat() {
  {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

StopReason Heartbeat::Turn(uint64_t beat, DriverWatch* driver) {
  if (beat > 0 && !client_->Put(beat_key_, std::to_string(beat)).ok()) faults_.fetch_add(1);
  if (control_->stop_requested()) return StopReason::kNone;  // winding down: beats only
  const std::string keys[3] = {stop_key_, kill_key_, driver_key_};
  auto got = client_->MultiGet(std::span<const std::string>(keys, driver_timeout_.count() > 0 ? 3 : 2));
  if (!got.ok()) {
    faults_.fetch_add(1);
    return StopReason::kNone;
  }
  if ((*got)[1].has_value()) return StopReason::kKilled;
  if ((*got)[0].has_value()) return StopReason::kStopped;
  if (driver_timeout_.count() > 0 && driver->Observe((*got)[2], Clock::now()))
    return StopReason::kOrphaned;
  return StopReason::kNone;
}

void Heartbeat::Loop() {
  DriverWatch driver(driver_timeout_);
  // The beats go on until the destructor, also while the worker winds down,
  // so a worker releasing its leases is not taken for a hung one.
  uint64_t beat = 0;
  Clock::time_point next_beat = Clock::now();
  while (true) {
    const Clock::time_point now = Clock::now();
    const bool beats = now >= next_beat;
    if (beats) next_beat = now + interval_;
    if (const StopReason why = Turn(beats ? ++beat : 0, &driver); why != StopReason::kNone) {
      control_->RequestStop(why);
    }
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, poll_, [&] { return done_; })) return;
  }
}

}  // namespace virga::worker
