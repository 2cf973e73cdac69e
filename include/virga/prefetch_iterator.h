// PrefetchIterator: streams partitions from an object store through a bounded
// queue of recycled buffers. Background threads fetch and decode ahead,
// several GETs at once (a cloud store answers each after ~10 ms), while the
// consumer works; the consumer gets minibatches in key order as views into the
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
  size_t minibatch_rows = 200;  // rows per minibatch; a partition's last one may be short;
                                // 0 = one minibatch per partition
  size_t buffers = 5;           // decoded partitions held at once, including the one being
                                // sliced: bounds memory; >= 2 to overlap fetch and compute.
                                // Raised to fetches_in_flight + 1 when fetches_in_flight > 1
  int max_attempts = 3;         // tries per object on Unavailable/IOError faults, with a
                                // 1, 2, 4 .. 50 ms backoff; other faults are not retried
  size_t fetches_in_flight = 4;  // GETs issued at once, each on a thread of its own that
                                 // also decodes what it fetched. 4 keeps a 60 MB/s link busy
                                 // despite 10 ms per request for partitions >= ~200 KB.
                                 // Memory: max(buffers, fetches_in_flight + 1) decoded
                                 // partitions + fetches_in_flight encoded objects.
                                 // 1 = one fetch at a time, `buffers` exactly as given
  bool keep_previous = false;    // a partition's views stay valid until the consumer moves
                                 // past the next non-empty partition after it (one more
                                 // decoded partition is held), so it can start on the next
                                 // partition while it finishes the work of the last one
};

// One minibatch. Views stay valid until the next call to Next() or the
// iterator's destruction; with keep_previous, until Next() moves past the
// next non-empty partition after this minibatch's.
struct Minibatch {
  RowBlockView rows;
  size_t partition = 0;              // 0-based sequence number of its partition
  const std::string* key = nullptr;  // object key of its partition
  bool last_in_partition = false;    // true on the partition's final minibatch
};

// Thread safety: one consumer thread calls Next(); Stop() and the counters
// may be called from any thread.
class PrefetchIterator {
 public:
  // Produces the next key to fetch, or nullopt when there are no more. Called
  // on the background threads, one call at a time, in the order the
  // partitions are delivered, and only once a buffer is free (so work is
  // never leased further ahead than the buffers); never again after nullopt.
  // It may block (e.g. to lease work); Stop() and the destructor then wait
  // for it to return.
  using KeySource = std::function<std::optional<std::string>()>;

  PrefetchIterator(std::shared_ptr<ObjectStore> store, KeySource keys,
                   PrefetchOptions options = {});
  PrefetchIterator(std::shared_ptr<ObjectStore> store, std::vector<std::string> keys,
                   PrefetchOptions options = {});
  ~PrefetchIterator();  // stops the background threads, waiting for their current calls
  PrefetchIterator(const PrefetchIterator&) = delete;
  PrefetchIterator& operator=(const PrefetchIterator&) = delete;

  // Fills *batch with the next minibatch and returns true; false when all
  // partitions are consumed or after Stop(). Empty partitions yield nothing.
  // A fetch/decode fault is returned as its status (naming the key) once the
  // partitions before it have been consumed; no key is taken after it is
  // seen (fetches already in flight finish and are discarded) and every
  // later call returns the same status. Allocates nothing per call.
  Result<bool> Next(Minibatch* batch);
  // Whether Next() would return without waiting for a fetch or for the
  // KeySource (it may still wait when the partition it would hand out is
  // empty and the one after it is not ready). Consumer thread only.
  bool Ready();

  // Stops early without waiting: the background threads finish their current
  // fetch (or KeySource call) and exit; Next() then returns false. Safe to
  // call from any thread.
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
