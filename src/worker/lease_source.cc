#include "worker/lease_source.h"

#include <cstdio>

namespace virga::worker {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr auto kStopCheckInterval = std::chrono::milliseconds(200);

}  // namespace

LeaseSource::LeaseSource(const WorkerPayload& payload, std::unique_ptr<PsClient> client,
                         WorkLedger* ledger, Control* control, std::string name,
                         uint64_t function_id)
    : payload_(payload),
      client_(std::move(client)),
      ledger_(ledger),
      control_(control),
      name_(std::move(name)),
      stop_key_(JobStopKey(payload.job)),
      kill_key_(FunctionKillKey(payload.job, function_id)) {}

std::optional<WorkItem> LeaseSource::Accept(const QueueLease& lease) {
  Result<WorkItem> item = ParseWorkItem(lease.payload);
  Status bad = item.status();
  if (item.ok() && item->epoch >= payload_.epochs) {
    bad = Status::InvalidArgument("work item '" + lease.payload + "': epoch beyond the payload's " +
                                  std::to_string(payload_.epochs));
  } else if (item.ok() && payload_.items > 0 && item->index >= payload_.items) {
    bad = Status::InvalidArgument("work item '" + lease.payload + "': index beyond the payload's " +
                                  std::to_string(payload_.items) + " items");
  }
  if (bad.ok()) return std::move(item).value();
  // It can never be processed: drop it from the queue rather than have every
  // worker lease it forever, and say so.
  std::fprintf(stderr, "virga worker: rejecting %s\n", bad.message().c_str());
  (void)control_->Retry([&] { return client_->Ack(payload_.queue, lease.lease_id); }, &faults_);
  rejected_.fetch_add(1);
  return std::nullopt;
}

std::optional<std::string> LeaseSource::Next() {
  const Clock::time_point idle_since = Clock::now();
  Clock::time_point next_stop_check = idle_since + kStopCheckInterval;
  for (;;) {
    if (control_->stop_requested()) return std::nullopt;
    if (control_->Expired()) {
      control_->RequestStop(StopReason::kLifetime);
      return std::nullopt;
    }
    std::optional<Result<std::optional<QueueLease>>> got;
    Status s = control_->Retry(
        [&] {
          got = client_->Lease(payload_.queue, name_, std::chrono::milliseconds(payload_.lease_ms));
          return got->status();
        },
        &faults_);
    if (!s.ok()) {
      if (!control_->stop_requested() && !control_->Expired())
        control_->RequestStop(StopReason::kError, "leasing from queue '" + payload_.queue + "': " + s.ToString());
      return std::nullopt;
    }
    if (const std::optional<QueueLease>& lease = got->value(); lease.has_value()) {
      std::optional<WorkItem> item = Accept(*lease);
      if (!item) continue;
      std::string key = item->key;
      ledger_->Add(lease->lease_id, std::move(*item));
      return key;
    }
    const Clock::time_point now = Clock::now();
    if (now - idle_since >= std::chrono::milliseconds(payload_.max_idle_ms)) return std::nullopt;
    if (now >= next_stop_check) {
      next_stop_check = now + kStopCheckInterval;
      bool fault = false;
      if (StopReason why = CheckStopKeys(client_.get(), stop_key_, kill_key_, &fault);
          why != StopReason::kNone) {
        control_->RequestStop(why);
        return std::nullopt;
      }
    }
    control_->SleepFor(kPollInterval);
  }
}

StopReason CheckStopKeys(PsClient* client, const std::string& stop_key,
                         const std::string& kill_key, bool* fault) {
  const std::string keys[2] = {stop_key, kill_key};
  Result<std::vector<std::optional<std::string>>> got = client->MultiGet(keys);
  if (!got.ok()) {
    *fault = true;
    return StopReason::kNone;
  }
  if ((*got)[1].has_value()) return StopReason::kKilled;
  if ((*got)[0].has_value()) return StopReason::kStopped;
  return StopReason::kNone;
}

}  // namespace virga::worker
