#include "models/key_map.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace virga {
namespace {

constexpr size_t kMinCells = 64;

// Fibonacci hashing: the top bits of key * 2^64 / phi spread consecutive and
// strided indices evenly.
inline size_t Home(uint32_t key, uint32_t shift) {
  return static_cast<size_t>((uint64_t{key} * 0x9E3779B97F4A7C15ull) >> shift);
}

}  // namespace

KeyMap::KeyMap(size_t expected_keys) {
  const size_t cells = std::max(kMinCells, std::bit_ceil(2 * expected_keys));
  cells_ = std::make_unique<Cell[]>(cells);  // value-initialised: every stamp 0
  mask_ = cells - 1;
  shift_ = 64 - static_cast<uint32_t>(std::countr_zero(cells));
  EnsureKeys(expected_keys + 1);
  EnsureEntries(expected_keys);
}

void KeyMap::EnsureEntries(size_t n) {
  if (n <= entries_capacity_) return;
  entries_capacity_ = std::max(n, entries_capacity_ + entries_capacity_ / 2);
  slots_ = std::make_unique<uint32_t[]>(entries_capacity_);
}

void KeyMap::EnsureKeys(size_t n) {
  if (n <= keys_capacity_) return;
  const size_t cap = std::max(n, keys_capacity_ + keys_capacity_ / 2);
  auto bigger = std::make_unique<uint64_t[]>(cap);
  if (num_keys_ > 0) std::memcpy(bigger.get(), keys_.get(), num_keys_ * sizeof(uint64_t));
  keys_ = std::move(bigger);
  keys_capacity_ = cap;
}

void KeyMap::GrowTable() {
  const size_t cells = 2 * (mask_ + 1);
  cells_ = std::make_unique<Cell[]>(cells);
  mask_ = cells - 1;
  shift_ = 64 - static_cast<uint32_t>(std::countr_zero(cells));
  // Re-insert this minibatch's keys (slot 0, the bias, is not in the table).
  for (size_t s = 1; s < num_keys_; ++s) {
    const uint32_t key = static_cast<uint32_t>(keys_[s]);
    size_t h = Home(key, shift_);
    while (cells_[h].stamp == generation_) h = (h + 1) & mask_;
    cells_[h] = Cell{generation_, key, static_cast<uint32_t>(s)};
  }
}

inline uint32_t KeyMap::Lookup(uint32_t key) {
  for (size_t h = Home(key, shift_);; h = (h + 1) & mask_) {
    Cell& c = cells_[h];
    if (c.stamp != generation_) {
      if (2 * num_keys_ > mask_ + 1) {  // keep the load factor <= 1/2
        GrowTable();
        return Lookup(key);
      }
      const auto slot = static_cast<uint32_t>(num_keys_);
      c = Cell{generation_, key, slot};
      keys_[num_keys_++] = key;  // capacity ensured by Build
      return slot;
    }
    if (c.key == key) return c.slot;
  }
}

void KeyMap::Build(const RowBlockView& rows) {
  if (++generation_ == 0) {  // stamps wrapped: forget every old stamp once
    for (size_t i = 0; i <= mask_; ++i) cells_[i].stamp = 0;
    generation_ = 1;
  }
  const size_t n = rows.nnz();
  EnsureEntries(n);
  num_keys_ = 0;  // nothing to keep if the key list grows
  EnsureKeys(n + 1);
  keys_[0] = kBiasKey;
  num_keys_ = 1;
  num_entries_ = n;
  if (n == 0) return;
  const uint32_t* idx = rows.indices.data() + rows.offsets[0];
  uint32_t* out = slots_.get();
  for (size_t i = 0; i < n; ++i) out[i] = Lookup(idx[i]);
}

size_t KeyMap::capacity_bytes() const {
  return (mask_ + 1) * sizeof(Cell) + keys_capacity_ * sizeof(uint64_t) +
         entries_capacity_ * sizeof(uint32_t);
}

}  // namespace virga
