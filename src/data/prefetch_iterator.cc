#include "virga/prefetch_iterator.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "virga/partition.h"

namespace virga {

// The buffers form a ring of n slots; partition number `seq` (the seq-th key
// from the KeySource) goes to slot seq % n. Fetch threads take turns at the
// KeySource (one holds key_busy_ at a time, so keys get consecutive seqs in
// the order the source produced them), then fetch and decode concurrently,
// each into its own slot, and mark it ready; they finish in any order. The
// consumer reads slot taken_ % n once it is ready, so partitions are
// delivered in seq order, and hands it back by advancing released_.
// Invariant: released_ <= taken_ <= claimed_ <= released_ + n. A slot is owned
// (written or read without the lock) by the fetcher that claimed its seq
// until it is marked ready, then by the consumer until released; the mutex
// publishes each hand-over. The ring needs no free list, the queue no
// allocation.
class PrefetchIterator::Impl {
 public:
  Impl(std::shared_ptr<ObjectStore> store, KeySource keys, PrefetchOptions options)
      : store_(std::move(store)), keys_(std::move(keys)), options_(Sanitize(options)) {
    slots_.resize(options_.buffers);
    for (size_t i = 0; i < options_.fetches_in_flight; ++i) {
      fetchers_.emplace_back(&Impl::FetchLoop, this);
    }
  }
  ~Impl() {
    Stop();
    for (std::thread& t : fetchers_) t.join();
  }

  Result<bool> Next(Minibatch* batch);
  bool Ready();
  void Stop();

  std::atomic<int64_t> data_wait_ns{0};
  std::atomic<uint64_t> partitions_done{0};
  std::atomic<uint64_t> bytes_fetched{0};

 private:
  struct Slot {
    PartitionBuffer buffer;
    std::string key;
    Status status;       // not OK: a fault takes this partition's place
    bool ready = false;  // GUARDED_BY(mu_): filled, owned by the consumer until released
  };

  static PrefetchOptions Sanitize(PrefetchOptions o) {
    o.fetches_in_flight = std::clamp<size_t>(o.fetches_in_flight, 1, 64);
    o.buffers = std::max<size_t>(o.buffers, 1);
    if (o.fetches_in_flight > 1) o.buffers = std::max(o.buffers, o.fetches_in_flight + 1);
    o.max_attempts = std::max(o.max_attempts, 1);
    return o;
  }

  // Fetch threads.
  void FetchLoop();
  bool ClaimKey(uint64_t* seq);
  Status Fetch(Slot* slot, std::string* fetched);
  bool SleepUnlessStopped(std::chrono::milliseconds d);

  // Consumer.
  Slot* Take();
  void Release();
  void Emit(Minibatch* batch);

  const std::shared_ptr<ObjectStore> store_;
  const KeySource keys_;
  const PrefetchOptions options_;
  std::vector<Slot> slots_;  // the ring; sized once

  std::mutex mu_;
  std::condition_variable ready_cv_;  // consumer waits: a slot ready, keys done, stop
  std::condition_variable work_cv_;   // fetchers wait: a slot freed, the key turn free, stop
  uint64_t claimed_ = 0;              // GUARDED_BY(mu_): keys taken from keys_
  uint64_t released_ = 0;             // GUARDED_BY(mu_)
  bool key_busy_ = false;             // GUARDED_BY(mu_): a fetcher is in keys_()
  bool keys_done_ = false;            // GUARDED_BY(mu_): keys_() returned nullopt
  bool fault_seen_ = false;           // GUARDED_BY(mu_): a fetch failed; take no more keys
  std::atomic<bool> stop_{false};     // written under mu_, read anywhere

  // Consumer only.
  uint64_t taken_ = 0;
  Slot* current_ = nullptr;  // the partition being sliced, or null
  PartitionBuffer spare_;    // keep_previous: the last non-empty partition released
  RowBlockView view_;        // current_'s rows
  size_t pos_ = 0;           // next row of view_ to hand out
  Status fault_;             // sticky once returned

  std::vector<std::thread> fetchers_;
};

void PrefetchIterator::Impl::FetchLoop() {
  std::string fetched;  // this thread's encoded object, reused
  uint64_t seq = 0;
  while (ClaimKey(&seq)) {
    Slot* slot = &slots_[seq % slots_.size()];
    slot->status = Fetch(slot, &fetched);
    {
      std::lock_guard<std::mutex> l(mu_);
      slot->ready = true;
      if (!slot->status.ok()) fault_seen_ = true;
    }
    ready_cv_.notify_one();
    work_cv_.notify_all();  // after a fault, idle fetchers exit
  }
}

// Waits for a free slot and the turn at the KeySource, then takes the next
// key into that slot. False when the thread should exit: stopped, no more
// keys, or a fault was seen.
bool PrefetchIterator::Impl::ClaimKey(uint64_t* seq) {
  {
    std::unique_lock<std::mutex> l(mu_);
    auto done = [&] { return stop_.load() || keys_done_ || fault_seen_; };
    work_cv_.wait(l,
                  [&] { return done() || (!key_busy_ && claimed_ - released_ < slots_.size()); });
    if (done()) return false;
    key_busy_ = true;
    *seq = claimed_;
  }
  std::optional<std::string> key = keys_();  // not under mu_: it may block
  {
    std::lock_guard<std::mutex> l(mu_);
    key_busy_ = false;
    if (key) {
      slots_[*seq % slots_.size()].key = std::move(*key);
      ++claimed_;
    } else {
      keys_done_ = true;
    }
  }
  work_cv_.notify_all();
  if (!key) ready_cv_.notify_one();
  return key.has_value() && !stop_.load();  // a key returned after Stop is not fetched
}

Status PrefetchIterator::Impl::Fetch(Slot* slot, std::string* fetched) {
  Status s;
  int attempt = 1;
  for (;; ++attempt) {
    s = store_->Get(slot->key, fetched);
    const bool transient =
        s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kIOError;
    if (s.ok() || !transient || attempt >= options_.max_attempts) break;
    // 1, 2, 4 ... ms, at most 50 ms: enough for a blip, short enough to stop.
    auto backoff = std::chrono::milliseconds(std::min(50, 1 << std::min(attempt - 1, 6)));
    if (!SleepUnlessStopped(backoff)) return Status::Cancelled(slot->key + ": stopped");
  }
  if (!s.ok()) {
    std::string m = s.message();
    if (m.find(slot->key) == std::string::npos) m = slot->key + ": " + m;
    if (attempt > 1) m += " (after " + std::to_string(attempt) + " attempts)";
    return Status(s.code(), std::move(m));
  }
  bytes_fetched.fetch_add(fetched->size(), std::memory_order_relaxed);
  return DecodePartition(*fetched, slot->key, &slot->buffer);
}

bool PrefetchIterator::Impl::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return !work_cv_.wait_for(l, d, [&] { return stop_.load(); });
}

void PrefetchIterator::Impl::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
}

PrefetchIterator::Impl::Slot* PrefetchIterator::Impl::Take() {
  std::unique_lock<std::mutex> l(mu_);
  Slot* next = &slots_[taken_ % slots_.size()];  // seq taken_'s slot, see the class comment
  auto ready = [&] { return stop_.load() || next->ready || (keys_done_ && taken_ == claimed_); };
  if (!ready()) {
    const auto start = std::chrono::steady_clock::now();
    ready_cv_.wait(l, ready);
    const auto waited = std::chrono::steady_clock::now() - start;
    data_wait_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count(),
                           std::memory_order_relaxed);
  }
  if (stop_.load() || !next->ready) return nullptr;
  ++taken_;
  return next;
}

void PrefetchIterator::Impl::Release() {
  if (current_->status.ok()) partitions_done.fetch_add(1, std::memory_order_relaxed);
  // keep_previous: the finished partition's rows move to the spare buffer
  // (a swap of owners: the rows stay where they are, views into them stay
  // valid) and the slot goes back with the spare's old storage, so slots are
  // still released in seq order and an empty partition holds nothing.
  if (options_.keep_previous && current_->status.ok() && current_->buffer.rows() > 0)
    std::swap(current_->buffer, spare_);
  current_ = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    slots_[released_++ % slots_.size()].ready = false;
  }
  work_cv_.notify_all();
}

bool PrefetchIterator::Impl::Ready() {
  if (!fault_.ok() || stop_.load(std::memory_order_relaxed)) return true;
  if (current_ != nullptr && pos_ < view_.rows()) return true;
  std::lock_guard<std::mutex> l(mu_);
  return slots_[taken_ % slots_.size()].ready || (keys_done_ && taken_ == claimed_);
}

void PrefetchIterator::Impl::Emit(Minibatch* batch) {
  const size_t rows = view_.rows();
  const size_t mb = options_.minibatch_rows == 0 ? rows : options_.minibatch_rows;
  const size_t end = rows - pos_ > mb ? pos_ + mb : rows;
  batch->rows = view_.Slice(pos_, end);
  batch->partition = taken_ - 1;
  batch->key = &current_->key;
  batch->last_in_partition = end == rows;
  pos_ = end;
}

Result<bool> PrefetchIterator::Impl::Next(Minibatch* batch) {
  if (!fault_.ok()) return fault_;
  if (stop_.load(std::memory_order_relaxed)) return false;
  if (current_ != nullptr) {
    if (pos_ < view_.rows()) {
      Emit(batch);
      return true;
    }
    Release();
  }
  for (;;) {
    Slot* slot = Take();
    if (slot == nullptr) return false;
    if (!slot->status.ok()) {
      fault_ = slot->status;
      return fault_;
    }
    current_ = slot;
    view_ = slot->buffer.view();
    pos_ = 0;
    if (view_.rows() > 0) {
      Emit(batch);
      return true;
    }
    Release();  // an empty partition yields no minibatch
  }
}

PrefetchIterator::PrefetchIterator(std::shared_ptr<ObjectStore> store, KeySource keys,
                                   PrefetchOptions options)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(keys), options)) {}

PrefetchIterator::PrefetchIterator(std::shared_ptr<ObjectStore> store,
                                   std::vector<std::string> keys, PrefetchOptions options)
    : PrefetchIterator(
          std::move(store),
          [keys = std::move(keys), i = size_t{0}]() mutable -> std::optional<std::string> {
            if (i == keys.size()) return std::nullopt;
            return keys[i++];
          },
          options) {}

PrefetchIterator::~PrefetchIterator() = default;

Result<bool> PrefetchIterator::Next(Minibatch* batch) { return impl_->Next(batch); }
bool PrefetchIterator::Ready() { return impl_->Ready(); }
void PrefetchIterator::Stop() { impl_->Stop(); }

std::chrono::nanoseconds PrefetchIterator::data_wait() const {
  return std::chrono::nanoseconds(impl_->data_wait_ns.load(std::memory_order_relaxed));
}
uint64_t PrefetchIterator::partitions_done() const {
  return impl_->partitions_done.load(std::memory_order_relaxed);
}
uint64_t PrefetchIterator::bytes_fetched() const {
  return impl_->bytes_fetched.load(std::memory_order_relaxed);
}

}  // namespace virga
