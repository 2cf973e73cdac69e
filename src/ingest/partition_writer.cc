#include "ingest/partition_writer.h"

#include <algorithm>

namespace virga::ingest_internal {
namespace {

uint64_t MaxIndexBound(const RowBlockView& v) {
  uint32_t max_index = 0;
  for (size_t p = v.offsets[0]; p < v.offsets[v.rows()]; ++p)
    max_index = std::max(max_index, v.indices[p]);
  return v.nnz() ? uint64_t{max_index} + 1 : 0;
}

// The codec byte of an encoded partition's header (docs/object-layout.md).
constexpr size_t kCodecByte = 6;

}  // namespace

PartitionWriter::PartitionWriter(ObjectStore& store, const IngestOptions& options, int64_t part,
                                 bool binary_counts, bool statistics)
    : store_(store),
      options_(options),
      encoder_(options.encode),
      work_(kPoolBlocks),
      put_(kPoolBlocks),
      free_(kPoolBlocks),
      part_(part),
      want_binary_counts_(binary_counts),
      statistics_(statistics) {
  for (size_t i = 0; i < kPoolBlocks; ++i) {
    auto block = std::make_unique<Block>();
    block->rows.Reserve(options.rows_per_partition, size_t{options.rows_per_partition} * 16);
    free_.Push(std::move(block));
  }
  fold_thread_ = std::thread([this] { FoldLoop(); });
  for (size_t i = 0; i < kPutThreads; ++i) put_threads_.emplace_back([this] { PutLoop(); });
}

PartitionWriter::~PartitionWriter() { (void)Finish(); }

std::unique_ptr<Block> PartitionWriter::Acquire() {
  auto block = free_.Pop();
  return block ? std::move(*block) : nullptr;
}

bool PartitionWriter::Submit(std::unique_ptr<Block> block) { return work_.Push(std::move(block)); }

Status PartitionWriter::Finish() {
  if (!finished_) {
    finished_ = true;
    work_.Close();
    fold_thread_.join();  // closes put_ on its way out
    for (std::thread& t : put_threads_) t.join();
    free_.Close();
    while (free_.Pop()) {
    }  // frees the pool: the manifest is written next, at peak memory
  }
  std::lock_guard lock(mu_);
  return status_;
}

void PartitionWriter::FoldLoop() {
  while (auto next = work_.Pop()) {
    if (failed_.load(std::memory_order_relaxed)) break;
    std::unique_ptr<Block> block = std::move(*next);
    const RowBlockView view = block->rows.view();
    FoldLabels(view);
    if (block->test) {
      test_bound_ = std::max(test_bound_, MaxIndexBound(view));
    } else if (statistics_) {
      stats_.Add(view);
    } else {
      train_bound_ = std::max(train_bound_, MaxIndexBound(view));
    }
    if (Status s = encoder_.Encode(view, &block->encoded); !s.ok()) {
      Fail(s);
      break;
    }
    std::vector<PartitionInfo>& parts = parts_[block->test];
    PartitionInfo info;
    info.key = part_ < 0 ? PartitionKey(options_.dataset, block->test, parts.size())
                         : PartPartitionKey(options_.dataset, block->test,
                                            static_cast<uint64_t>(part_), parts.size());
    block->key = info.key;
    info.rows = view.rows();
    info.nnz = view.nnz();
    info.bytes = block->encoded.size();
    output_bytes_ += info.bytes;
    parts.push_back(std::move(info));
    if (!put_.Push(std::move(block))) break;  // a store thread failed
  }
  labels_.kind = labels_01_ ? "binary01" : labels_pm1_ ? "binary_pm1" : "real";
  put_.Close();
  // While the store threads finish their Puts: the manifest needs these.
  if (!failed_.load(std::memory_order_relaxed)) {
    numeric_stats_ = stats_.NumericStats();
    if (want_binary_counts_) binary_counts_ = stats_.BinaryCounts();
  }
  stats_.Release();
}

void PartitionWriter::FoldLabels(const RowBlockView& view) {
  for (float y : view.labels) {
    if (labels_.count == 0) labels_.min = labels_.max = y;
    labels_.min = std::min<double>(labels_.min, y);
    labels_.max = std::max<double>(labels_.max, y);
    ++labels_.count;
    labels_.positives += y > 0;
    labels_01_ = labels_01_ && (y == 0 || y == 1);
    labels_pm1_ = labels_pm1_ && (y == -1 || y == 1);
  }
}

Status PausingEncoder::Encode(const RowBlockView& rows, std::string* out) {
  PartitionEncodeOptions o = options_;
  const bool try_codec = o.codec != Codec::kNone && raw_left_ == 0;
  if (o.codec != Codec::kNone && !try_codec) {
    --raw_left_;
    o.codec = Codec::kNone;
  }
  VIRGA_RETURN_IF_ERROR(EncodePartition(rows, o, out));
  if (try_codec && (*out)[kCodecByte] == static_cast<char>(Codec::kNone)) {
    raw_left_ = kRawStreak;  // the codec saved too little: stop trying for a while
  }
  return Status::OK();
}

void PartitionWriter::PutLoop() {
  while (auto next = put_.Pop()) {
    if (failed_.load(std::memory_order_relaxed)) return;
    std::unique_ptr<Block> block = std::move(*next);
    if (Status s = store_.Put(block->key, block->encoded); !s.ok()) {
      Fail(s);
      return;
    }
    block->rows.Clear();
    free_.Push(std::move(block));
  }
}

void PartitionWriter::Fail(const Status& s) {
  {
    std::lock_guard lock(mu_);
    if (status_.ok()) status_ = s;
  }
  failed_.store(true, std::memory_order_relaxed);
  work_.Close();
  put_.Close();
  free_.Close();
}

}  // namespace virga::ingest_internal
