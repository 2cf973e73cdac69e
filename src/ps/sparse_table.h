// A hash-sharded sparse table (see table.h for the contract).
//
// Layout: 64 shards chosen by the top bits of ShardHash(key). Each shard
// holds, under its own mutex, an open-addressing map (linear probing,
// power-of-two capacity, load <= 3/4, probe start = the hash bits below the
// shard bits) from key to a row number, a flat arena of rows [width weights |
// width * state width state], and the key of each row. Rows are only ever
// appended, so growth rehashes the map but never moves a row's position in
// the arena order.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "ps/table.h"
#include "ps/table_internal.h"
#include "ps/table_serialize.h"

namespace virga::ps {

class SparseTable final : public Table {
 public:
  // REQUIRES: config.Validate().ok() and config.kind == kSparse.
  explicit SparseTable(const TableConfig& config);

  const TableConfig& config() const override { return config_; }
  Status Pull(std::span<const uint64_t> keys, std::span<float> out, uint64_t* version) override;
  Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
              uint64_t* version) override;
  uint64_t version() const override { return version_.load(std::memory_order_acquire); }
  TableStats stats() const override;
  Status Serialize(std::string* out) const override;
  void ForEach(const std::function<void(uint64_t, std::span<const float>)>& fn) const override;

  // Restore: inserts the parsed rows in order, then sets the version.
  // Corruption naming `source` on a duplicate key.
  // REQUIRES: a fresh table with parsed.config.
  Status LoadRows(const internal::ParsedTable& parsed, std::string_view source);

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;  // Entry::row of a free slot

  struct Entry {
    uint64_t key;
    uint32_t row;
  };
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::vector<Entry> map;       // GUARDED_BY(mu); size 0 or a power of two
    uint32_t slot_shift = 64;     // GUARDED_BY(mu); 64 - log2(map.size())
    std::vector<uint64_t> keys;   // GUARDED_BY(mu); key of each row
    std::vector<float> arena;     // GUARDED_BY(mu); keys.size() rows of row_floats_
  };

  // Where the probe for hash h starts. REQUIRES: s.mu held, map not empty.
  static size_t Slot(const Shard& s, uint64_t h) {
    return (h << internal::kShardBits) >> s.slot_shift;
  }
  // The row number of `key` (hash h = ShardHash(key)), or kEmpty.
  // REQUIRES: s.mu held.
  static uint32_t FindRow(const Shard& s, uint64_t key, uint64_t h) {
    if (s.map.empty()) return kEmpty;
    const size_t mask = s.map.size() - 1;
    for (size_t i = Slot(s, h);; i = (i + 1) & mask) {
      const Entry& e = s.map[i];
      if (e.row == kEmpty || e.key == key) return e.row;
    }
  }
  // The row number of `key`, appended with its initial value if absent (which
  // may move the arena). REQUIRES: s.mu held.
  uint32_t FindOrInsertRow(Shard& s, uint64_t key, uint64_t h) {
    const uint32_t row = FindRow(s, key, h);
    return row != kEmpty ? row : InsertRow(s, key, h);
  }
  // Appends the absent `key` (growing the map first if needed).
  // REQUIRES: s.mu held.
  uint32_t InsertRow(Shard& s, uint64_t key, uint64_t h);
  // Doubles the map (or creates it) and reinserts every row. REQUIRES: s.mu held.
  void Grow(Shard& s);

  // Groups keys by shard in this thread's scratch, with their hashes as tags.
  static internal::ShardGroups& Group(std::span<const uint64_t> keys);

  // Runs a call's shard groups through a three-stage software pipeline, so
  // the cache misses of neighbouring shards overlap instead of following one
  // another (a random batch's rows are in L3 or memory, not L2; measured
  // 2-3x faster than one shard at a time, bench_table *Random):
  //   t:     lock shard t, prefetch the map slots of its keys;
  //   t + 1: resolve(shard, begin, end) finds (or inserts) the rows into
  //          g.row[begin, end); their arena rows are then prefetched;
  //   t + 2: body(shard, begin, end), unlock.
  // At most three shard locks are held, always taken in ascending shard
  // order, so concurrent calls cannot deadlock.
  template <typename Resolve, typename Body>
  void Pipeline(internal::ShardGroups& g, Resolve resolve, Body body);

  const TableConfig config_;
  const uint32_t row_floats_;
  std::unique_ptr<Shard[]> shards_;  // internal::kShards of them
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> rows_{0};
  internal::Counters counters_;
};

}  // namespace virga::ps
