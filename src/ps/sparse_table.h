// A hash-sharded sparse table (see table.h for the contract).
//
// Layout: 64 shards chosen by the top bits of ShardHash(key). Each shard
// holds, under its own mutex, one open-addressing array of cells (linear
// probing, power-of-two capacity, load <= 3/4, probe start = the hash bits
// below the shard bits). A cell carries its row inline:
//   [key: u64 | used: u32 | width weights | width * state width state]
// padded to 8 bytes (24 bytes for a width-1 FTRL or Adagrad row), so a pull
// or push of a key costs one cache miss, not one in a map and another in a
// separate arena of rows.
//
// Order: rows are listed (Serialize, ForEach) in a shard's cell order,
// starting after its first free cell. Restoring inserts them in that order
// into shards sized for their final row counts, which puts every key back
// into the cell it came from (linear probing: the cells between a key's home
// and its cell belong to keys listed before it), so a restored table
// serializes to the same bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstring>
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
  Status PullState(std::span<const uint64_t> keys, std::span<float> out,
                   uint64_t* version) override;
  Status PushDelta(std::span<const uint64_t> keys, std::span<const float> deltas, uint32_t steps,
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
  static constexpr uint32_t kEmpty = UINT32_MAX;  // no cell (a key not in the table)
  static constexpr size_t kMinCells = 16;
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unique_ptr<std::byte[]> cells;  // GUARDED_BY(mu); cap cells of cell_bytes_
    size_t cap = 0;                      // GUARDED_BY(mu); 0 or a power of two
    size_t size = 0;                     // GUARDED_BY(mu); used cells
    uint32_t slot_shift = 64;            // GUARDED_BY(mu); 64 - log2(cap)
  };
  // Cell c of a shard: its key, whether it is used, and its row.
  std::byte* Cell(const Shard& s, size_t c) const { return s.cells.get() + c * cell_bytes_; }
  static uint64_t CellKey(const std::byte* cell) {
    uint64_t k;
    std::memcpy(&k, cell, sizeof k);
    return k;
  }
  static bool CellUsed(const std::byte* cell) {
    uint32_t u;
    std::memcpy(&u, cell + sizeof(uint64_t), sizeof u);
    return u != 0;
  }
  static float* CellRow(std::byte* cell) {
    return reinterpret_cast<float*>(cell + sizeof(uint64_t) + sizeof(uint32_t));
  }
  static const float* CellRow(const std::byte* cell) {
    return reinterpret_cast<const float*>(cell + sizeof(uint64_t) + sizeof(uint32_t));
  }
  // Where the probe for hash h starts. REQUIRES: s.mu held, s.cap > 0.
  static size_t Slot(const Shard& s, uint64_t h) {
    return (h << internal::kShardBits) >> s.slot_shift;
  }
  // The cell of `key` (hash h = ShardHash(key)), or kEmpty. REQUIRES: s.mu held.
  uint32_t FindCell(const Shard& s, uint64_t key, uint64_t h) const {
    if (s.cap == 0) return kEmpty;
    const size_t mask = s.cap - 1;
    for (size_t i = Slot(s, h);; i = (i + 1) & mask) {
      const std::byte* c = Cell(s, i);
      if (!CellUsed(c)) return kEmpty;
      if (CellKey(c) == key) return static_cast<uint32_t>(i);
    }
  }
  // The cell of `key`, inserted with its initial row if absent (which may
  // grow the shard and move every cell; *grew then says so). REQUIRES: s.mu held.
  uint32_t FindOrInsertCell(Shard& s, uint64_t key, uint64_t h, bool* grew) {
    const uint32_t c = FindCell(s, key, h);
    return c != kEmpty ? c : InsertCell(s, key, h, grew);
  }
  // g.row[j] = the cell of keys[g.order[j]] for j in [begin, end), kEmpty
  // if absent. REQUIRES: s.mu held.
  void FindCells(const Shard& s, std::span<const uint64_t> keys, internal::ShardGroups& g,
               uint32_t begin, uint32_t end) const {
    for (uint32_t j = begin; j < end; ++j) g.row[j] = FindCell(s, keys[g.order[j]], g.tag[g.order[j]]);
  }
  // The same, inserting absent keys first. Cells are numbers, not pointers,
  // and an insert that grows the shard moves every cell: the group is then
  // resolved again. REQUIRES: s.mu held.
  void FindOrInsertCells(Shard& s, std::span<const uint64_t> keys, internal::ShardGroups& g,
                       uint32_t begin, uint32_t end) {
    bool grew = false;
    for (uint32_t j = begin; j < end; ++j)
      g.row[j] = FindOrInsertCell(s, keys[g.order[j]], g.tag[g.order[j]], &grew);
    if (grew) FindCells(s, keys, g, begin, end);
  }
  // Inserts the absent `key` (growing the shard first if needed).
  uint32_t InsertCell(Shard& s, uint64_t key, uint64_t h, bool* grew);
  // The capacity a shard of n rows has (a pure function of n: growth only
  // ever happens one insert at a time, when the load would pass 3/4).
  static size_t CapacityFor(size_t n);
  // Resizes the shard to `cap` cells, reinserting every row. REQUIRES: s.mu held.
  void Resize(Shard& s, size_t cap);
  // The first free cell of a non-empty shard: listing starts after it.
  static size_t ListStart(const SparseTable& t, const Shard& s);
  // Groups keys by shard in this thread's scratch, with their hashes as tags.
  static internal::ShardGroups& Group(std::span<const uint64_t> keys);
  // Runs a call's shard groups through a software pipeline, so the cache
  // misses of neighbouring shards overlap instead of following one another
  // (a random batch's rows are in L3 or memory, not L2):
  //   t:     lock shard t, prefetch the home cells of its keys;
  //   t + 1: resolve(shard, begin, end) finds (or inserts) the cells of
  //          g.row[begin, end), then body(shard, begin, end), unlock.
  // At most two shard locks are held, always taken in ascending shard
  // order, so concurrent calls cannot deadlock.
  template <typename Resolve, typename Body>
  void Pipeline(internal::ShardGroups& g, Resolve resolve, Body body);
  const TableConfig config_;
  const uint32_t row_floats_;
  const size_t cell_bytes_;  // key + used + row, padded to 8
  std::unique_ptr<Shard[]> shards_;  // internal::kShards of them
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> rows_{0};
  internal::Counters counters_;
};

}  // namespace virga::ps
