// KeyMap: the dense slots of one minibatch's features.
//
// Build() lists the distinct feature indices of a minibatch (the keys to
// pull and push) and gives every stored entry the slot of its feature, so a
// model reads weights[slot[i]] instead of hashing per entry. Slot 0 is always
// the bias (kBiasKey); features follow in order of first appearance.
//
// Method: an open-addressing table whose cells hold slots (0 = free), keys
// compared through keys()[slot]; 16-bit cells while the table has at most
// 131072 cells (8 KB for a Criteo minibatch of 20 rows, 128 KB for a local
// round of 2560), 32-bit cells beyond. The table is cleared per build, sized
// for 4 cells per key from the previous build's key count (never more than
// 4 per entry) and regrown if a build passes load 1/2, and
// the hit-or-new decision is taken without a branch: in a click log half
// the entries of a minibatch repeat a feature and half are new, in no
// predictable order, and a branch on it mispredicted on about every other
// entry (3.5x slower, bench_models BM_KeyMap).
//
// Allocation: none once the map has seen a minibatch of its largest size.
//
// Thread safety: none; one map per thread (a worker keeps two, for the
// minibatch being computed and the one whose pull is in flight).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "virga/model.h"
#include "virga/row_block.h"

namespace virga {

class KeyMap {
 public:
  // `expected_keys`: distinct keys per minibatch to size the table for (it
  // grows past that on demand).
  explicit KeyMap(size_t expected_keys = 1024);
  KeyMap(const KeyMap&) = delete;
  KeyMap& operator=(const KeyMap&) = delete;

  // Maps the entries of rows (indices[offsets[0] .. offsets[rows()])) to
  // slots. Replaces the previous minibatch's mapping.
  void Build(const RowBlockView& rows);

  // Distinct keys, bias first: keys()[slot] is the key of `slot`.
  std::span<const uint64_t> keys() const { return {keys_.get(), num_keys_}; }
  // slots()[i] is the slot of the entry at indices[offsets[0] + i].
  std::span<const uint32_t> slots() const { return {slots_.get(), num_entries_}; }
  uint32_t num_slots() const { return static_cast<uint32_t>(num_keys_); }
  static constexpr uint32_t kBiasSlot = 0;

  // The batch a model consumes: `rows` must be the view Build() was given.
  SlotBatch Batch(const RowBlockView& rows) const {
    return SlotBatch{rows, slots(), kBiasSlot, num_slots()};
  }

  // out[i]: the slot of keys[i] in the last Build, kAbsent if it had no such
  // key (the bias key: kBiasSlot). REQUIRES: out.size() == keys.size().
  static constexpr uint32_t kAbsent = UINT32_MAX;
  void Find(std::span<const uint64_t> keys, std::span<uint32_t> out) const;

  // Bytes held (for memory accounting and tests).
  size_t capacity_bytes() const;

 private:
  // Maps entries [from, n) into cells (cleared first; `fresh` = false: the
  // keys found so far are re-entered), stopping early once the keys fill
  // half the cells. Returns the first entry not mapped.
  template <typename Cell>
  size_t BuildWith(Cell* cells, size_t num_cells, const uint32_t* idx, size_t n, size_t from,
                   bool fresh);
  template <typename Cell>
  void FindWith(const Cell* cells, std::span<const uint64_t> keys, std::span<uint32_t> out) const;
  template <typename Cell>
  static void Ensure(std::unique_ptr<Cell[]>* cells, size_t* capacity, size_t n);

  std::unique_ptr<uint16_t[]> cells16_;  // tables of <= 131072 cells
  size_t cells16_capacity_ = 0;
  std::unique_ptr<uint32_t[]> cells32_;  // larger ones
  size_t cells32_capacity_ = 0;
  std::unique_ptr<uint64_t[]> keys_;
  size_t num_keys_ = 0;
  size_t built_cells_ = 0;  // the last Build's table: cells16_ up to kMaxCells16 cells; 0: none
  size_t keys_capacity_ = 0;
  std::unique_ptr<uint32_t[]> slots_;
  size_t num_entries_ = 0;
  size_t entries_capacity_ = 0;
};

// The distinct slots of one minibatch, the bias first, from its entries'
// slots (KeyMap::slots() of its rows): what a local step updates (a
// worker's round of local steps, src/worker/trainer.cc). A generation stamp
// per slot marks the slots listed; the test is taken without a branch, for
// the reason KeyMap's is (a click log repeats a feature in about every other
// entry, unpredictably).
//
// Allocation: none once it has seen its largest minibatch and slot count.
class DistinctSlots {
 public:
  // REQUIRES: every slot and bias_slot < num_slots.
  std::span<const uint32_t> Of(std::span<const uint32_t> slots, uint32_t bias_slot,
                               uint32_t num_slots);

 private:
  std::vector<uint32_t> stamp_;  // stamp_[slot] == gen_: listed in this call
  uint32_t gen_ = 0;
  std::vector<uint32_t> out_;
};

}  // namespace virga
