// PartitionWriter: the back half of the ingest pipeline. The parsing thread
// fills Blocks and submits them; a fold thread takes them in submission
// order, folds labels and train-split feature statistics, keys and encodes
// each one; kPutThreads store threads Put the encoded partitions and recycle
// the blocks. Several Puts are in flight because a file:// Put is durable
// (fdatasync + directory fsync, ~5-15 ms each): one at a time, that wait was
// the writer's largest cost (~0.7-1 s per 200 MB of real-valued LIBSVM).
//
// Memory is bounded by the pool: kPoolBlocks blocks of rows_per_partition
// rows, each with its encoded copy (~2.6 MB per block for 4096 rows of 40
// real-valued features), plus the statistics (feature_stats.h).
//
// Codec: with a compressing codec, a partition the codec does not shrink by
// min_saving is stored raw (PartitionEncodeOptions). After such a partition
// the next PausingEncoder::kRawStreak partitions are stored raw without
// trying the codec (lz4 on real-valued floats costs more than the checksum
// and copy together and saves nothing), then the codec is tried again.
// Partitions are encoded in submission order, so the output depends on the
// input only.
//
// Thread safety: Acquire/Submit from one thread; Finish once, then the
// accessors.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/bounded_queue.h"
#include "ingest/feature_stats.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/object_store.h"
#include "virga/partition.h"

namespace virga::ingest_internal {

struct Block {
  RowBlock rows;
  bool test = false;
  // Set by the fold thread (capacity reused):
  std::string key;      // the partition's object key
  std::string encoded;  // the partition object
};

// EncodePartition with the codec paused after a partition it did not shrink
// (see the top of this file). Not thread-safe.
class PausingEncoder {
 public:
  static constexpr uint32_t kRawStreak = 15;

  explicit PausingEncoder(const PartitionEncodeOptions& options) : options_(options) {}
  Status Encode(const RowBlockView& rows, std::string* out);

 private:
  const PartitionEncodeOptions options_;
  uint32_t raw_left_ = 0;  // partitions still to store raw without trying the codec
};

class PartitionWriter {
 public:
  static constexpr size_t kPutThreads = 3;
  // 2 filling, 2 queued or folding, kPutThreads being stored, 3 queued for a store thread.
  static constexpr size_t kPoolBlocks = 2 + 2 + kPutThreads + 3;

  // `part` >= 0: the partitions of part `part` of a parted ingest are named
  // PartPartitionKey(dataset, test, part, i); -1: PartitionKey(dataset, test, i).
  // With `binary_counts` the train statistics also keep binary_counts().
  // Without `statistics` (data whose values are all 1: LineParser::
  // values_are_ones) none are kept: numeric_stats() and binary_counts() stay
  // empty, only the index bounds are tracked.
  PartitionWriter(ObjectStore& store, const IngestOptions& options, int64_t part = -1,
                  bool binary_counts = false, bool statistics = true);
  ~PartitionWriter();  // Finish()es

  // A recycled empty block; null if the writer has failed.
  std::unique_ptr<Block> Acquire();
  // Hands a full block over. False if the writer has failed.
  bool Submit(std::unique_ptr<Block> block);

  // Waits for every submitted block to be stored, frees the block pool
  // (Acquire then returns null) and returns the first fault.
  Status Finish();

  // Valid after Finish().
  std::vector<FeatureStat>& numeric_stats() { return numeric_stats_; }  // of the train split
  // (index, entries) of the train split's binary features (every entry 1), sorted;
  // only with binary_counts.
  std::vector<std::pair<uint32_t, uint64_t>>& binary_counts() { return binary_counts_; }
  bool labels_01() const { return labels_01_; }
  bool labels_pm1() const { return labels_pm1_; }
  uint64_t train_index_bound() const { return std::max(stats_.index_bound(), train_bound_); }
  const LabelStat& labels() const { return labels_; }
  std::vector<PartitionInfo>& parts(bool test) { return parts_[test]; }
  uint64_t output_bytes() const { return output_bytes_; }
  uint64_t test_index_bound() const { return test_bound_; }

 private:
  void FoldLoop();
  void FoldLabels(const RowBlockView& view);
  void PutLoop();
  void Fail(const Status& s);

  ObjectStore& store_;
  const IngestOptions& options_;
  PausingEncoder encoder_;                     // used by the fold thread
  BoundedQueue<std::unique_ptr<Block>> work_;  // parser -> fold
  BoundedQueue<std::unique_ptr<Block>> put_;   // fold -> store threads
  BoundedQueue<std::unique_ptr<Block>> free_;  // back to the parser
  std::thread fold_thread_;
  std::vector<std::thread> put_threads_;
  bool finished_ = false;  // touched by the owner thread only

  std::mutex mu_;
  Status status_;                    // GUARDED_BY(mu_)
  std::atomic<bool> failed_{false};  // status_ is not OK: stop early

  // Owned by the fold thread until Finish().
  FeatureStatsAccumulator stats_;  // released once numeric_stats_ is computed
  std::vector<FeatureStat> numeric_stats_;
  const int64_t part_;
  const bool want_binary_counts_;
  std::vector<std::pair<uint32_t, uint64_t>> binary_counts_;
  LabelStat labels_;
  bool labels_pm1_ = true, labels_01_ = true;
  std::vector<PartitionInfo> parts_[2];  // [test], in partition order
  uint64_t output_bytes_ = 0;
  uint64_t test_bound_ = 0;
  uint64_t train_bound_ = 0;  // without statistics
  const bool statistics_;
};

}  // namespace virga::ingest_internal
