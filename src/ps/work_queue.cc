#include "ps/work_queue.h"

#include "common/coding.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

namespace virga::ps {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

constexpr uint32_t kMagic = 0x53515756;  // "VWQS" read as little-endian u32
constexpr uint32_t kFormat = 1;
constexpr size_t kHeaderBytes = 4 + 4 + 8 + 8 + 8;
constexpr size_t kMinQueueBytes = 4 + 8 * 4;  // name_len, counters, item_count
constexpr size_t kMinItemBytes = 8 + 4 + 8;
// Longer timeouts are capped so that now + timeout cannot overflow.
constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24 * 365 * 10);

struct Item {
  std::string payload;
  uint32_t leases = 0;  // times leased so far
};

struct LeaseRecord {
  uint64_t item_id = 0;
  Item item;
  TimePoint deadline;
  std::string worker;  // the holder, kept for diagnostics
};

struct Queue {
  std::mutex mu;
  // All GUARDED_BY(mu). An item is in exactly one of pending / leased.
  std::map<uint64_t, Item> pending;                    // by item id: oldest first
  std::unordered_map<uint64_t, LeaseRecord> leased;          // by lease id
  std::set<std::pair<TimePoint, uint64_t>> deadlines;  // (deadline, lease id) of each lease
  uint64_t enqueued = 0, acked = 0, expired = 0;
};

using coding::PutU32;
using coding::PutU64;
using coding::PatchU64;
using coding::Reader;

// How far a restore moves the lease-id counter past the checkpoint's.
constexpr uint64_t kRestoreLeaseGap = uint64_t{1} << 32;

std::string LeaseGone(std::string_view queue, uint64_t lease_id) {
  return fmt::format("work queue '{}': lease {} is unknown, already done, or expired "
                     "(an expired lease's item is back in the queue)", queue, lease_id);
}

}  // namespace

struct WorkQueues::Impl {
  // A queue locked for one call: the map lock (shared, or exclusive when the
  // queue was just created) and the queue's own lock, taken in that order.
  struct Ref {
    std::shared_lock<std::shared_mutex> shared;
    std::unique_lock<std::shared_mutex> exclusive;
    std::unique_lock<std::mutex> lock;
    Queue* q = nullptr;
  };

  Ref Find(std::string_view name) {
    Ref ref;
    ref.shared = std::shared_lock(mu);
    auto it = queues.find(name);
    if (it == queues.end()) return ref;
    ref.q = it->second.get();
    ref.lock = std::unique_lock(ref.q->mu);
    Expire(*ref.q, clock());
    return ref;
  }
  Ref FindOrCreate(std::string_view name) {
    Ref ref = Find(name);
    if (ref.q != nullptr) return ref;
    ref.shared.unlock();
    ref.exclusive = std::unique_lock(mu);
    auto& slot = queues[std::string(name)];
    if (slot == nullptr) slot = std::make_unique<Queue>();
    ref.q = slot.get();
    ref.lock = std::unique_lock(ref.q->mu);
    return ref;
  }
  // Returns leases due at `now` to pending. REQUIRES: q.mu held.
  static void Expire(Queue& q, TimePoint now) {
    while (!q.deadlines.empty() && q.deadlines.begin()->first <= now) {
      auto lease = q.leased.find(q.deadlines.begin()->second);
      q.deadlines.erase(q.deadlines.begin());
      q.pending.emplace(lease->second.item_id, std::move(lease->second.item));
      q.leased.erase(lease);
      ++q.expired;
    }
  }
  // Ends a live lease, returning its item to pending when `requeue`.
  // REQUIRES: q.mu held.
  static Status EndLease(Queue& q, std::string_view name, uint64_t lease_id, bool requeue) {
    auto it = q.leased.find(lease_id);
    if (it == q.leased.end()) return Status::NotFound(LeaseGone(name, lease_id));
    q.deadlines.erase({it->second.deadline, lease_id});
    if (requeue) q.pending.emplace(it->second.item_id, std::move(it->second.item));
    q.leased.erase(it);
    return Status::OK();
  }
  static TimePoint Deadline(TimePoint now, std::chrono::milliseconds timeout) {
    return now + std::clamp(timeout, std::chrono::milliseconds(0), kMaxTimeout);
  }

  Clock clock;
  mutable std::shared_mutex mu;
  std::map<std::string, std::unique_ptr<Queue>, std::less<>> queues;  // GUARDED_BY(mu)
  // Allocated only under mu (shared) plus the queue's lock, so that Restore,
  // holding mu exclusively, can move them forward safely.
  std::atomic<uint64_t> next_item_id{1};
  std::atomic<uint64_t> next_lease_id{1};
};

WorkQueues::WorkQueues(Clock clock) : impl_(std::make_shared<Impl>()) {
  impl_->clock = clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); });
}

std::vector<uint64_t> WorkQueues::Enqueue(std::string_view queue, std::span<const std::string> payloads) {
  Impl::Ref ref = impl_->FindOrCreate(queue);
  std::vector<uint64_t> ids(payloads.size());
  const uint64_t first = impl_->next_item_id.fetch_add(payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    ids[i] = first + i;
    ref.q->pending.emplace_hint(ref.q->pending.end(), ids[i], Item{payloads[i], 0});
  }
  ref.q->enqueued += payloads.size();
  return ids;
}

std::optional<LeasedItem> WorkQueues::Lease(std::string_view queue, std::string_view worker,
                                            std::chrono::milliseconds timeout) {
  Impl::Ref ref = impl_->Find(queue);
  if (ref.q == nullptr || ref.q->pending.empty()) return std::nullopt;
  auto node = ref.q->pending.extract(ref.q->pending.begin());
  LeasedItem out;
  out.lease_id = impl_->next_lease_id.fetch_add(1);
  out.item_id = node.key();
  out.payload = node.mapped().payload;
  out.attempt = ++node.mapped().leases;
  const TimePoint deadline = Impl::Deadline(impl_->clock(), timeout);
  ref.q->leased.emplace(out.lease_id,
                        LeaseRecord{out.item_id, std::move(node.mapped()), deadline, std::string(worker)});
  ref.q->deadlines.emplace(deadline, out.lease_id);
  return out;
}

Status WorkQueues::Ack(std::string_view queue, uint64_t lease_id) {
  Impl::Ref ref = impl_->Find(queue);
  if (ref.q == nullptr) return Status::NotFound(fmt::format("work queue '{}' not found", queue));
  VIRGA_RETURN_IF_ERROR(Impl::EndLease(*ref.q, queue, lease_id, /*requeue=*/false));
  ++ref.q->acked;
  return Status::OK();
}

Status WorkQueues::Release(std::string_view queue, uint64_t lease_id) {
  Impl::Ref ref = impl_->Find(queue);
  if (ref.q == nullptr) return Status::NotFound(fmt::format("work queue '{}' not found", queue));
  return Impl::EndLease(*ref.q, queue, lease_id, /*requeue=*/true);
}

Status WorkQueues::Renew(std::string_view queue, uint64_t lease_id, std::chrono::milliseconds timeout) {
  if (timeout <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument(fmt::format("work queue '{}': renew of lease {} with timeout {} ms <= 0",
                                               queue, lease_id, timeout.count()));
  }
  Impl::Ref ref = impl_->Find(queue);
  if (ref.q == nullptr) return Status::NotFound(fmt::format("work queue '{}' not found", queue));
  auto it = ref.q->leased.find(lease_id);
  if (it == ref.q->leased.end()) return Status::NotFound(LeaseGone(queue, lease_id));
  ref.q->deadlines.erase({it->second.deadline, lease_id});
  it->second.deadline = Impl::Deadline(impl_->clock(), timeout);
  ref.q->deadlines.emplace(it->second.deadline, lease_id);
  return Status::OK();
}

QueueStats WorkQueues::Stats(std::string_view queue) const {
  Impl::Ref ref = impl_->Find(queue);
  if (ref.q == nullptr) return {};
  return {ref.q->pending.size(), ref.q->leased.size(), ref.q->acked, ref.q->expired, ref.q->enqueued};
}

void WorkQueues::Drop(std::string_view queue) {
  decltype(impl_->queues)::node_type dropped;  // destroyed after the lock is released
  std::unique_lock lock(impl_->mu);
  auto it = impl_->queues.find(queue);
  if (it != impl_->queues.end()) dropped = impl_->queues.extract(it);
}

std::vector<std::string> WorkQueues::List() const {
  std::shared_lock lock(impl_->mu);
  std::vector<std::string> names;
  for (const auto& [name, q] : impl_->queues) names.push_back(name);
  return names;
}

void WorkQueues::Serialize(std::string* out) const {
  out->clear();
  PutU32(out, kMagic);
  PutU32(out, kFormat);
  PutU64(out, 0);  // next_item_id and next_lease_id, patched below
  PutU64(out, 0);
  std::shared_lock map_lock(impl_->mu);
  PutU64(out, impl_->queues.size());
  std::vector<std::pair<uint64_t, const Item*>> items;
  for (const auto& [name, q] : impl_->queues) {
    std::lock_guard lock(q->mu);
    PutU32(out, static_cast<uint32_t>(name.size()));
    out->append(name);
    for (uint64_t v : {q->enqueued, q->acked, q->expired}) PutU64(out, v);
    items.clear();
    for (const auto& [id, item] : q->pending) items.emplace_back(id, &item);
    for (const auto& [lease_id, lease] : q->leased) items.emplace_back(lease.item_id, &lease.item);
    std::sort(items.begin(), items.end());
    PutU64(out, items.size());
    for (const auto& [id, item] : items) {
      PutU64(out, id);
      PutU32(out, item->leases);
      PutU64(out, item->payload.size());
      out->append(item->payload);
    }
  }
  // Read after every queue was written: above every id in the blob.
  PatchU64(out, 8, impl_->next_item_id.load());
  PatchU64(out, 16, impl_->next_lease_id.load());
  PutU64(out, XXH3_64bits(out->data(), out->size()));
}

Status WorkQueues::Restore(std::string_view bytes, std::string_view source) {
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format("{}: work queue snapshot: {}", source, what));
  };
  if (bytes.size() < kHeaderBytes + 8) return corrupt(fmt::format("truncated ({} bytes)", bytes.size()));
  std::string_view body;
  if (!coding::VerifyChecksumTrailer(bytes, &body)) return corrupt("checksum mismatch");

  Reader r(body);
  uint32_t magic = 0, format = 0;
  uint64_t next_item = 0, next_lease = 0, nq = 0;
  r.U32(&magic);
  r.U32(&format);
  r.U64(&next_item);
  r.U64(&next_lease);
  r.U64(&nq);
  if (magic != kMagic) return corrupt("bad magic");
  if (format != kFormat) return corrupt(fmt::format("unknown format version {}", format));
  if (nq > r.remaining() / kMinQueueBytes) return corrupt(fmt::format("queue count {} exceeds the data", nq));

  decltype(impl_->queues) fresh;
  for (uint64_t i = 0; i < nq; ++i) {
    uint32_t name_len = 0;
    std::string_view name;
    auto q = std::make_unique<Queue>();
    uint64_t n = 0;
    if (!r.U32(&name_len) || !r.Bytes(name_len, &name) || !r.U64(&q->enqueued) || !r.U64(&q->acked) ||
        !r.U64(&q->expired) || !r.U64(&n)) {
      return corrupt(fmt::format("queue {} truncated", i));
    }
    if (!fresh.empty() && name <= fresh.rbegin()->first) {
      return corrupt(fmt::format("queue {}: names unsorted or duplicated", i));
    }
    if (n > r.remaining() / kMinItemBytes) return corrupt(fmt::format("queue {}: item count exceeds the data", i));
    for (uint64_t j = 0; j < n; ++j) {
      uint64_t id = 0, len = 0;
      Item item;
      std::string_view payload;
      if (!r.U64(&id) || !r.U32(&item.leases) || !r.U64(&len) || !r.Bytes(len, &payload)) {
        return corrupt(fmt::format("queue {} item {} truncated", i, j));
      }
      if (id == 0 || id >= next_item || (!q->pending.empty() && id <= q->pending.rbegin()->first)) {
        return corrupt(fmt::format("queue {} item {}: id {} out of order or range", i, j, id));
      }
      item.payload.assign(payload);
      q->pending.emplace_hint(q->pending.end(), id, std::move(item));
    }
    fresh.emplace_hint(fresh.end(), std::string(name), std::move(q));
  }
  if (r.remaining() != 0) return corrupt(fmt::format("{} trailing bytes", r.remaining()));

  std::unique_lock lock(impl_->mu);  // released before `fresh` (the old queues) is destroyed
  impl_->queues.swap(fresh);
  impl_->next_item_id.store(std::max(next_item, impl_->next_item_id.load()));
  // Leases granted after the checkpoint was taken may still be held by
  // workers: their ids must never be granted again, or an old holder's Ack or
  // Release would end another worker's lease. The counter jumps past any
  // number of them.
  impl_->next_lease_id.store(std::max(next_lease, impl_->next_lease_id.load()) + kRestoreLeaseGap);
  return Status::OK();
}

}  // namespace virga::ps
