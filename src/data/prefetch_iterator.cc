#include "virga/prefetch_iterator.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "virga/partition.h"

namespace virga {

// The buffers form a ring: the producer fills slot produced_ % n, the consumer
// reads slot taken_ % n and hands it back by advancing released_. Slots are
// consumed in the order they are filled, so the ring needs no free list and
// the queue no allocation. Invariant: released_ <= taken_ <= produced_ <=
// released_ + n. A slot is owned (written or read without the lock) by the
// producer while released_ + n > seq >= produced_, and by the consumer while
// released_ <= seq < taken_; the mutex publishes the hand-over.
class PrefetchIterator::Impl {
 public:
  Impl(std::shared_ptr<ObjectStore> store, KeySource keys, PrefetchOptions options)
      : store_(std::move(store)), keys_(std::move(keys)), options_(Sanitize(options)) {
    slots_.resize(options_.buffers);
    thread_ = std::thread(&Impl::Run, this);
  }
  ~Impl() {
    Stop();
    thread_.join();
  }

  Result<bool> Next(Minibatch* batch);
  void Stop();

  std::atomic<int64_t> data_wait_ns{0};
  std::atomic<uint64_t> partitions_done{0};
  std::atomic<uint64_t> bytes_fetched{0};

 private:
  struct Slot {
    PartitionBuffer buffer;
    std::string key;
    Status status;  // not OK: a fault takes this partition's place
  };

  static PrefetchOptions Sanitize(PrefetchOptions o) {
    o.buffers = std::max<size_t>(o.buffers, 1);
    o.max_attempts = std::max(o.max_attempts, 1);
    return o;
  }

  // Producer (background thread).
  void Run();
  Slot* WaitForFreeSlot();
  Status Fetch(Slot* slot);
  bool SleepUnlessStopped(std::chrono::milliseconds d);

  // Consumer.
  Slot* Take();
  void Release();
  void Emit(Minibatch* batch);

  const std::shared_ptr<ObjectStore> store_;
  const KeySource keys_;
  const PrefetchOptions options_;
  std::vector<Slot> slots_;  // the ring; sized once
  std::string fetched_;      // producer only: the encoded object, reused

  std::mutex mu_;
  std::condition_variable filled_cv_;  // consumer waits: a slot filled, producer done, stop
  std::condition_variable freed_cv_;   // producer waits: a slot freed, stop
  uint64_t produced_ = 0;              // GUARDED_BY(mu_)
  uint64_t released_ = 0;              // GUARDED_BY(mu_)
  bool producer_done_ = false;         // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};      // written under mu_, read anywhere

  // Consumer only.
  uint64_t taken_ = 0;
  Slot* current_ = nullptr;  // the partition being sliced, or null
  RowBlockView view_;        // current_'s rows
  size_t pos_ = 0;           // next row of view_ to hand out
  Status fault_;             // sticky once returned

  std::thread thread_;
};

void PrefetchIterator::Impl::Run() {
  for (;;) {
    Slot* slot = WaitForFreeSlot();
    if (slot == nullptr) break;
    std::optional<std::string> key = keys_();
    if (!key || stop_.load()) break;
    slot->key = std::move(*key);
    slot->status = Fetch(slot);
    if (stop_.load()) break;
    const bool fault = !slot->status.ok();
    {
      std::lock_guard<std::mutex> l(mu_);
      ++produced_;
    }
    filled_cv_.notify_one();
    if (fault) break;  // nothing after a fault is delivered
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    producer_done_ = true;
  }
  filled_cv_.notify_all();
}

PrefetchIterator::Impl::Slot* PrefetchIterator::Impl::WaitForFreeSlot() {
  std::unique_lock<std::mutex> l(mu_);
  freed_cv_.wait(l, [&] { return stop_.load() || produced_ - released_ < slots_.size(); });
  return stop_.load() ? nullptr : &slots_[produced_ % slots_.size()];
}

Status PrefetchIterator::Impl::Fetch(Slot* slot) {
  Status s;
  int attempt = 1;
  for (;; ++attempt) {
    s = store_->Get(slot->key, &fetched_);
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
  bytes_fetched.fetch_add(fetched_.size(), std::memory_order_relaxed);
  return DecodePartition(fetched_, slot->key, &slot->buffer);
}

bool PrefetchIterator::Impl::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return !freed_cv_.wait_for(l, d, [&] { return stop_.load(); });
}

void PrefetchIterator::Impl::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_.store(true);
  }
  freed_cv_.notify_all();
  filled_cv_.notify_all();
}

PrefetchIterator::Impl::Slot* PrefetchIterator::Impl::Take() {
  std::unique_lock<std::mutex> l(mu_);
  auto ready = [&] { return stop_.load() || taken_ < produced_ || producer_done_; };
  if (!ready()) {
    const auto start = std::chrono::steady_clock::now();
    filled_cv_.wait(l, ready);
    const auto waited = std::chrono::steady_clock::now() - start;
    data_wait_ns.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count(),
                           std::memory_order_relaxed);
  }
  if (stop_.load() || taken_ == produced_) return nullptr;
  return &slots_[taken_++ % slots_.size()];
}

void PrefetchIterator::Impl::Release() {
  if (current_->status.ok()) partitions_done.fetch_add(1, std::memory_order_relaxed);
  current_ = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++released_;
  }
  freed_cv_.notify_one();
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
