// The worker's leased work: items parsed from their queue text and the
// leases a worker holds, in the order the prefetching iterator fetches them.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "virga/ps_client.h"
#include "virga/status.h"

namespace virga::worker {

// One work item (format in virga/worker.h):
//   "<epoch> <item index> <partition key> <row begin> <row end>"
struct WorkItem {
  uint32_t epoch = 0;
  uint64_t index = 0;  // element of the <job>/acks vector
  std::string key;     // partition object
  uint64_t begin = 0;  // rows [begin, end) of the partition
  uint64_t end = 0;
};

// InvalidArgument quoting the text for a malformed item.
Result<WorkItem> ParseWorkItem(std::string_view text);
std::string FormatWorkItem(const WorkItem& item);

// A lease held by this worker. `seq` is the sequence number the iterator
// gives the item's partition (the n-th key the KeySource returned).
struct LeasedWork {
  uint64_t seq = 0;
  uint64_t lease_id = 0;
  WorkItem item;
  std::chrono::steady_clock::time_point renewed;  // leased or last renewed
};

// Leases in fetch order. The lease thread appends (Add); the training thread
// looks items up, completes them and renews them. Thread-safe; no I/O
// happens under its lock (callers do the server calls on copies).
class WorkLedger {
 public:
  // Appends a lease; returns its sequence number (0, 1, 2, ... per ledger).
  uint64_t Add(uint64_t lease_id, WorkItem item);
  // A copy of the oldest item whose sequence number is in [from, to) (a
  // partition the iterator skipped because it was empty).
  std::optional<LeasedWork> OldestIn(uint64_t from, uint64_t to) const;
  // A copy of item `seq`, if held.
  std::optional<LeasedWork> Get(uint64_t seq) const;
  // Drops item `seq` (acked or released).
  void Remove(uint64_t seq);
  // Lease ids renewed at least `period` ago (stamped renewed now).
  std::vector<uint64_t> DueForRenewal(std::chrono::steady_clock::time_point now,
                                      std::chrono::milliseconds period);
  // Removes and returns every item.
  std::vector<LeasedWork> TakeAll();
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::deque<LeasedWork> items_;  // GUARDED_BY(mu_), by seq
  uint64_t next_seq_ = 0;         // GUARDED_BY(mu_)
};

}  // namespace virga::worker
