// PrefetchIterator: streams partitions from an object store through a bounded
// queue of recycled buffers. A background thread fetches and decodes ahead
// while the consumer works; the consumer gets minibatches as views into the
// decoded buffers (no row is copied) and the iterator counts the time the
// consumer waited for data.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "virga/object_store.h"
#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

struct PrefetchOptions {
  size_t minibatch_rows = 200;  // rows per minibatch; a partition's last one may be short
  size_t buffers = 3;           // decoded partitions in flight (>= 2): bounds memory
  int max_attempts = 3;         // tries per object on Unavailable/IOError faults
};

// One minibatch. Views stay valid until the next call to Next() or the
// iterator's destruction.
struct Minibatch {
  RowBlockView rows;
  size_t partition = 0;         // 0-based sequence number of its partition
  const std::string* key = nullptr;  // object key of its partition
  bool last_in_partition = false;    // true on the partition's final minibatch
};

class PrefetchIterator {
 public:
  // Produces the next key to fetch, or nullopt when there are no more. Called
  // on the background thread only, in order; it may block (e.g. to lease work).
  using KeySource = std::function<std::optional<std::string>()>;

  PrefetchIterator(std::shared_ptr<ObjectStore> store, KeySource keys,
                   PrefetchOptions options = {});
  PrefetchIterator(std::shared_ptr<ObjectStore> store, std::vector<std::string> keys,
                   PrefetchOptions options = {});
  ~PrefetchIterator();  // stops the background thread
  PrefetchIterator(const PrefetchIterator&) = delete;
  PrefetchIterator& operator=(const PrefetchIterator&) = delete;

  // Fills *batch with the next minibatch and returns true; false when all
  // partitions are consumed. A fetch/decode fault is returned as its status
  // (naming the key) once the partitions before it have been consumed.
  Result<bool> Next(Minibatch* batch);

  // Stops early: the background thread finishes its current fetch and exits;
  // Next() then returns false. Safe to call from any thread.
  void Stop();

  // Total time Next() spent blocked waiting for a decoded partition.
  std::chrono::nanoseconds data_wait() const;
  uint64_t partitions_done() const;  // fully consumed partitions
  uint64_t bytes_fetched() const;    // encoded bytes read from the store

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace virga
