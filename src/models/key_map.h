// KeyMap: the dense slots of one minibatch's features.
//
// Build() lists the distinct feature indices of a minibatch (the keys to
// pull and push) and gives every stored entry the slot of its feature, so a
// model reads weights[slot[i]] instead of hashing per entry. Slot 0 is always
// the bias (kBiasKey); features follow in order of first appearance.
//
// Allocation: none once the map has seen a minibatch of its largest size
// (open addressing with generation stamps, so starting a new minibatch is
// O(1) and the table only grows when a minibatch has more distinct keys than
// it can hold at load factor 1/2).
//
// Thread safety: none; one map per thread (a worker keeps two, for the
// minibatch being computed and the one whose pull is in flight).
#pragma once

#include <cstdint>
#include <memory>
#include <span>

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

  // Bytes held (for memory accounting and tests).
  size_t capacity_bytes() const;

 private:
  void GrowTable();  // doubles the table, re-inserting this minibatch's keys
  void EnsureEntries(size_t n);
  void EnsureKeys(size_t n);

  // The open-addressing table, as two arrays of cells: tag = generation << 32
  // | key (a cell whose generation is not the current one is empty, so a new
  // minibatch clears the table by bumping the generation), and its slot.
  std::unique_ptr<uint64_t[]> tags_;
  std::unique_ptr<uint32_t[]> cell_slots_;
  uint32_t shift_ = 0;       // 64 - log2(table size)
  size_t mask_ = 0;          // table size - 1
  uint32_t generation_ = 0;  // of the current minibatch; 0 marks never-used cells

  std::unique_ptr<uint64_t[]> keys_;
  size_t num_keys_ = 0;
  size_t keys_capacity_ = 0;
  std::unique_ptr<uint32_t[]> slots_;
  size_t num_entries_ = 0;
  size_t entries_capacity_ = 0;
};

}  // namespace virga
