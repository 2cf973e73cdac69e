// Named work queues with leases (at-least-once delivery). Schedulers enqueue
// the partitions of an epoch; workers lease one item at a time and ack it
// when done; an item whose lease expires before its ack goes back to the
// queue, so a worker that dies loses nothing.
//
// Order: pending items are handed out oldest first by item id (= enqueue
// order). An item coming back from an expired or released lease keeps its id,
// so it goes to the front, ahead of everything enqueued after it; several
// returned items come back in item order.
//
// Expiry is lazy: every call on a queue first returns that queue's leases
// whose deadline is <= clock() (deadlines kept in an ordered set, so each
// call costs O(log n) plus O(log n) per expired lease).
//
// Thread safety: all methods may be called concurrently. Each queue has its
// own mutex; a map-level shared_mutex guards the set of queues. Copies of a
// WorkQueues share one set of queues.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga::ps {

struct LeasedItem {
  uint64_t lease_id = 0;   // pass to Ack / Release / Renew; unique per lease, never reused
  uint64_t item_id = 0;    // stable id of the item across re-leases, unique across queues
  std::string payload;
  uint32_t attempt = 0;    // 1 on the first lease, +1 per re-lease (after expiry or release)
};

struct QueueStats {
  uint64_t pending = 0;    // waiting to be leased
  uint64_t leased = 0;     // out on a lease
  uint64_t acked = 0;      // done
  uint64_t expired = 0;    // leases that timed out (items returned)
  uint64_t enqueued = 0;
};

class WorkQueues {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // null: steady_clock::now. The clock must be thread-safe and monotonic.
  explicit WorkQueues(Clock clock = nullptr);

  // Appends items to queue `queue` (created on first use). Returns their ids,
  // increasing in payload order.
  std::vector<uint64_t> Enqueue(std::string_view queue, std::span<const std::string> payloads);
  // Leases the oldest pending item to `worker` until clock() + timeout;
  // nullopt if the queue is unknown or nothing is pending (after expired
  // leases were returned). A timeout <= 0 gives a lease that is already
  // expired at the next call.
  std::optional<LeasedItem> Lease(std::string_view queue, std::string_view worker,
                                  std::chrono::milliseconds timeout);
  // Marks a lease done; the item is gone for good. NotFound if the queue or
  // lease is unknown, already acked/released, or expired (its item went back
  // to the queue and may be processed again).
  Status Ack(std::string_view queue, uint64_t lease_id);
  // Gives a lease back early (e.g. a worker near its lifetime end): the item
  // returns to the front of the queue. NotFound as for Ack.
  Status Release(std::string_view queue, uint64_t lease_id);
  // Moves a live lease's deadline to clock() + timeout. NotFound as for Ack;
  // InvalidArgument for timeout <= 0.
  Status Renew(std::string_view queue, uint64_t lease_id, std::chrono::milliseconds timeout);
  // All zeros for an unknown queue.
  QueueStats Stats(std::string_view queue) const;
  // Removes the queue and its items; outstanding leases become unknown.
  void Drop(std::string_view queue);
  // Queue names, sorted.
  std::vector<std::string> List() const;

  // Checkpoint form (replaces *out). Each queue is a consistent snapshot;
  // leased items are written as pending (their leases die on restore):
  //   u32 magic "VWQS" | u32 format 1 | u64 next_item_id | u64 next_lease_id |
  //   u64 queue_count | queue_count x (
  //     u32 name_len | name | u64 enqueued | u64 acked | u64 expired |
  //     u64 item_count | item_count x (u64 item_id | u32 leases | u64 len | payload)) |
  //   u64 XXH3_64bits of every preceding byte
  // Little-endian; queues sorted by name, items by id.
  void Serialize(std::string* out) const;
  // Replaces all queues with a Serialize()d blob. Any damage is a Corruption
  // naming `source`; on error nothing changes. Item and lease ids continue
  // past both the blob's and this object's counters, so a stale lease id
  // held by a worker can never ack a new lease.
  Status Restore(std::string_view bytes, std::string_view source);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace virga::ps
