#include "models/key_map.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace virga {
namespace {

constexpr size_t kMinCells = 64;
constexpr size_t kSmallEntries = 65536;  // below: 16-bit cells suffice (slots <= entries)

// Fibonacci hashing: the top bits of key * 2^64 / phi spread consecutive and
// strided indices evenly.
inline size_t Home(uint32_t key, uint32_t shift) {
  return static_cast<size_t>((uint64_t{key} * 0x9E3779B97F4A7C15ull) >> shift);
}

// Hides a value from the optimiser, so flags computed without branches are
// combined without branches too (GCC otherwise turns `a & b` on two
// comparisons back into two jumps).
inline uint64_t Opaque(uint64_t x) {
  asm("" : "+r"(x));
  return x;
}

}  // namespace

KeyMap::KeyMap(size_t expected_keys) {
  keys_capacity_ = expected_keys + 1;
  keys_ = std::make_unique<uint64_t[]>(keys_capacity_);
  entries_capacity_ = expected_keys;
  slots_ = std::make_unique<uint32_t[]>(entries_capacity_);
  Ensure(&cells16_, &cells16_capacity_, std::bit_ceil(std::max(kMinCells, 4 * expected_keys)));
}

template <typename Cell>
void KeyMap::Ensure(std::unique_ptr<Cell[]>* cells, size_t* capacity, size_t n) {
  if (n <= *capacity) return;
  *cells = std::make_unique<Cell[]>(n);
  *capacity = n;
}

void KeyMap::Build(const RowBlockView& rows) {
  const size_t n = rows.nnz();
  if (n > entries_capacity_) {
    entries_capacity_ = std::max(n, entries_capacity_ + entries_capacity_ / 2);
    slots_ = std::make_unique<uint32_t[]>(entries_capacity_);
  }
  if (n + 1 > keys_capacity_) {
    keys_capacity_ = std::max(n + 1, keys_capacity_ + keys_capacity_ / 2);
    keys_ = std::make_unique<uint64_t[]>(keys_capacity_);
  }
  keys_[0] = kBiasKey;
  num_keys_ = 1;
  num_entries_ = n;
  if (n == 0) return;
  const uint32_t* idx = rows.indices.data() + rows.offsets[0];
  if (n < kSmallEntries) {
    const size_t cells = std::bit_ceil(std::max(kMinCells, 4 * n));  // load <= 1/4
    Ensure(&cells16_, &cells16_capacity_, cells);
    BuildWith(cells16_.get(), cells, idx, n);
  } else {
    const size_t cells = std::bit_ceil(2 * n);  // load <= 1/2
    Ensure(&cells32_, &cells32_capacity_, cells);
    BuildWith(cells32_.get(), cells, idx, n);
  }
}

template <typename Cell>
void KeyMap::BuildWith(Cell* cells, size_t num_cells, const uint32_t* idx, size_t n) {
  std::memset(cells, 0, num_cells * sizeof(Cell));
  const size_t mask = num_cells - 1;
  const auto shift = static_cast<uint32_t>(64 - std::countr_zero(num_cells));
  // Locals: stores through the arrays could otherwise alias the members and
  // force reloads per entry.
  uint64_t* keys = keys_.get();  // keys[0] is the bias: never equal to a 32-bit index
  uint32_t* out = slots_.get();
  uint32_t next = 1;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t key = idx[i];
    size_t h = Home(static_cast<uint32_t>(key), shift);
    uint32_t c = cells[h];
    // Probe on only when the home cell holds another key (rare at load 1/4).
    const uint64_t taken = Opaque(c != 0), other = Opaque(keys[c] != key);
    if (taken & other) [[unlikely]] {
      do {
        h = (h + 1) & mask;
        c = cells[h];
      } while (c != 0 && keys[c] != key);
    }
    // New key: take slot `next`. Written without a branch (a hit rewrites
    // its own cell; keys[next] is overwritten until a new key claims it).
    const uint32_t fresh = c == 0;
    c |= next & (0u - fresh);
    cells[h] = static_cast<Cell>(c);
    keys[next] = key;
    out[i] = c;
    next += fresh;
  }
  num_keys_ = next;
}

size_t KeyMap::capacity_bytes() const {
  return cells16_capacity_ * sizeof(uint16_t) + cells32_capacity_ * sizeof(uint32_t) +
         keys_capacity_ * sizeof(uint64_t) + entries_capacity_ * sizeof(uint32_t);
}

}  // namespace virga
