// The ByteSource of an object in a store: ranged GETs of chunk_bytes, fetched
// in order by a background thread into a ring of chunks_ahead + 1 buffers.
//
// The ring is the PrefetchIterator's, with one producer: chunk i goes to slot
// i % n; the fetcher may fill chunk i once i < released_ + n, the reader takes
// chunks in order once they are ready and hands each back by advancing
// released_. A slot is owned by the fetcher until marked ready, then by the
// reader until released; the mutex publishes each hand-over.

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "io/byte_source.h"

namespace virga::io_internal {
namespace {

class ObjectSource final : public ByteSource {
 public:
  ObjectSource(std::shared_ptr<ObjectStore> store, std::string key, uint64_t size,
               const ObjectSourceOptions& o)
      : store_(std::move(store)),
        key_(std::move(key)),
        size_(size),
        chunk_bytes_(std::max<size_t>(o.chunk_bytes, 1)),
        tail_bytes_(std::max<size_t>(o.tail_chunk_bytes, 1)),
        max_attempts_(std::max(o.max_attempts, 1)),
        begin_(std::min(o.offset, size)),
        soft_end_(std::clamp(o.soft_end, begin_, size)),
        body_chunks_((soft_end_ - begin_ + chunk_bytes_ - 1) / chunk_bytes_),
        chunks_(body_chunks_ + (size - soft_end_ + tail_bytes_ - 1) / tail_bytes_),
        ring_(std::max<size_t>(o.chunks_ahead, 1) + 1),
        fetcher_(&ObjectSource::FetchLoop, this) {}
  ~ObjectSource() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    free_cv_.notify_all();
    fetcher_.join();  // after its current GET
  }
  ObjectSource(const ObjectSource&) = delete;
  ObjectSource& operator=(const ObjectSource&) = delete;

  Status Read(char* dst, size_t n, size_t* got) override;

 private:
  struct Chunk {
    std::string data;    // capacity reused from chunk to chunk
    Status status;       // not OK: the GET failed; nothing after it is fetched
    bool ready = false;  // GUARDED_BY(mu_)
  };

  void FetchLoop();
  Status Fetch(uint64_t index, std::string* out);
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  void ReleaseCurrent();

  const std::shared_ptr<ObjectStore> store_;
  const std::string key_;
  const uint64_t size_;
  const size_t chunk_bytes_;
  const size_t tail_bytes_;
  const int max_attempts_;
  // Chunks of chunk_bytes_ cover [begin_, soft_end_), then chunks of
  // tail_bytes_ cover [soft_end_, size_).
  const uint64_t begin_;
  const uint64_t soft_end_;
  const uint64_t body_chunks_;
  const uint64_t chunks_;
  std::vector<Chunk> ring_;  // sized once

  std::mutex mu_;
  std::condition_variable ready_cv_;  // reader waits: a chunk ready
  std::condition_variable free_cv_;   // fetcher waits: a slot released, stop
  uint64_t released_ = 0;             // GUARDED_BY(mu_)
  bool stop_ = false;                 // GUARDED_BY(mu_)

  // Reader only.
  uint64_t next_ = 0;     // the next chunk to take
  Chunk* cur_ = nullptr;  // the chunk being read, or null
  size_t pos_ = 0;        // next byte of cur_->data
  Status fault_;          // sticky

  std::thread fetcher_;  // last: started once every member above is built
};

void ObjectSource::FetchLoop() {
  for (uint64_t i = 0; i < chunks_; ++i) {
    Chunk* c = &ring_[i % ring_.size()];
    {
      std::unique_lock<std::mutex> l(mu_);
      free_cv_.wait(l, [&] { return stop_ || i - released_ < ring_.size(); });
      if (stop_) return;
    }
    c->status = Fetch(i, &c->data);
    const bool fault = !c->status.ok();
    {
      std::lock_guard<std::mutex> l(mu_);
      c->ready = true;
    }
    ready_cv_.notify_one();
    if (fault) return;
  }
}

Status ObjectSource::Fetch(uint64_t index, std::string* out) {
  uint64_t offset, want;
  if (index < body_chunks_) {
    offset = begin_ + index * chunk_bytes_;
    want = std::min<uint64_t>(chunk_bytes_, soft_end_ - offset);
  } else {
    offset = soft_end_ + (index - body_chunks_) * tail_bytes_;
    want = std::min<uint64_t>(tail_bytes_, size_ - offset);
  }
  Status s;
  for (int attempt = 1;; ++attempt) {
    s = store_->GetRange(key_, offset, want, out);
    const bool transient =
        s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kIOError;
    if (s.ok() || !transient || attempt >= max_attempts_) break;
    if (!SleepUnlessStopped(std::chrono::milliseconds(10 << (attempt - 1)))) {
      return Status::Cancelled("stopped");
    }
  }
  if (!s.ok()) return s.WithContext("GET of bytes from " + std::to_string(offset));
  if (out->size() != want) {
    return Status::IOError("the object changed while read: bytes from " + std::to_string(offset) +
                           ": got " + std::to_string(out->size()) + ", expected " +
                           std::to_string(want) + " of " + std::to_string(size_));
  }
  return Status::OK();
}

bool ObjectSource::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu_);
  return !free_cv_.wait_for(l, d, [&] { return stop_; });
}

void ObjectSource::ReleaseCurrent() {
  {
    std::lock_guard<std::mutex> l(mu_);
    cur_->ready = false;
    ++released_;
  }
  free_cv_.notify_one();
  cur_ = nullptr;
}

Status ObjectSource::Read(char* dst, size_t n, size_t* got) {
  if (!fault_.ok()) return fault_;
  while (cur_ == nullptr || pos_ == cur_->data.size()) {
    if (cur_ != nullptr) ReleaseCurrent();
    if (next_ == chunks_) {
      *got = 0;
      return Status::OK();
    }
    Chunk* c = &ring_[next_ % ring_.size()];
    {
      std::unique_lock<std::mutex> l(mu_);
      ready_cv_.wait(l, [&] { return c->ready; });
    }
    if (!c->status.ok()) return fault_ = c->status;
    ++next_;
    cur_ = c;
    pos_ = 0;
  }
  *got = std::min(n, cur_->data.size() - pos_);
  std::memcpy(dst, cur_->data.data() + pos_, *got);
  pos_ += *got;
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenObjectSource(std::shared_ptr<ObjectStore> store,
                                                     std::string key, const std::string& name,
                                                     const ObjectSourceOptions& options) {
  Result<ObjectInfo> info = store->Stat(key);
  if (!info.ok()) return info.status().WithContext(name);
  return std::unique_ptr<ByteSource>(
      new ObjectSource(std::move(store), std::move(key), info->size, options));
}

}  // namespace virga::io_internal
