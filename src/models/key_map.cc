#include "models/key_map.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace virga {
namespace {

constexpr size_t kMinCells = 64;
constexpr uint64_t kGenerationMask = 0xFFFF'FFFF'0000'0000ull;

// Fibonacci hashing: the top bits of key * 2^64 / phi spread consecutive and
// strided indices evenly.
inline size_t Home(uint32_t key, uint32_t shift) {
  return static_cast<size_t>((uint64_t{key} * 0x9E3779B97F4A7C15ull) >> shift);
}

}  // namespace

KeyMap::KeyMap(size_t expected_keys) {
  const size_t cells = std::max(kMinCells, std::bit_ceil(2 * expected_keys));
  tags_ = std::make_unique<uint64_t[]>(cells);  // value-initialised: generation 0
  cell_slots_ = std::make_unique<uint32_t[]>(cells);
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
  tags_ = std::make_unique<uint64_t[]>(cells);
  cell_slots_ = std::make_unique<uint32_t[]>(cells);
  mask_ = cells - 1;
  shift_ = 64 - static_cast<uint32_t>(std::countr_zero(cells));
  // Re-insert this minibatch's keys (slot 0, the bias, is not in the table).
  const uint64_t gen = uint64_t{generation_} << 32;
  for (size_t s = 1; s < num_keys_; ++s) {
    const auto key = static_cast<uint32_t>(keys_[s]);
    size_t h = Home(key, shift_);
    while ((tags_[h] & kGenerationMask) == gen) h = (h + 1) & mask_;
    tags_[h] = gen | key;
    cell_slots_[h] = static_cast<uint32_t>(s);
  }
}

void KeyMap::Build(const RowBlockView& rows) {
  if (++generation_ == 0) {  // generations wrapped: forget every old tag once
    std::fill_n(tags_.get(), mask_ + 1, uint64_t{0});
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

  // The loop works on locals: stores through the arrays could otherwise
  // alias the members and force reloads per entry.
  const uint32_t* idx = rows.indices.data() + rows.offsets[0];
  uint32_t* out = slots_.get();
  uint64_t* keys = keys_.get();
  const uint64_t gen = uint64_t{generation_} << 32;
  uint64_t* tags = tags_.get();
  uint32_t* cell_slots = cell_slots_.get();
  size_t mask = mask_;
  uint32_t shift = shift_;
  size_t limit = (mask + 1) / 2;  // keep the load factor <= 1/2
  uint32_t next = 1;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t key = idx[i];
    const uint64_t want = gen | key;
    size_t h = Home(key, shift);
    uint64_t tag = tags[h];
    // Probe past cells of other keys of this minibatch (rare at load <= 1/2).
    while (tag != want && (tag & kGenerationMask) == gen) {
      h = (h + 1) & mask;
      tag = tags[h];
    }
    // Found or new: written without a branch (a hit rewrites the same
    // values), since which one it is cannot be predicted.
    const bool fresh = tag != want;
    const uint32_t slot = fresh ? next : cell_slots[h];
    tags[h] = want;
    cell_slots[h] = slot;
    keys[next] = key;  // kept only if fresh (next moves past it)
    out[i] = slot;
    next += fresh;
    if (next >= limit) [[unlikely]] {
      num_keys_ = next;
      GrowTable();
      tags = tags_.get();
      cell_slots = cell_slots_.get();
      mask = mask_;
      shift = shift_;
      limit = (mask + 1) / 2;
    }
  }
  num_keys_ = next;
}

size_t KeyMap::capacity_bytes() const {
  return (mask_ + 1) * (sizeof(uint64_t) + sizeof(uint32_t)) + keys_capacity_ * sizeof(uint64_t) +
         entries_capacity_ * sizeof(uint32_t);
}

}  // namespace virga
