#include "models/key_map.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

namespace virga {
namespace {

constexpr size_t kMinCells = 64;
// Entries ahead of the one being mapped whose home cells are prefetched.
constexpr size_t kPrefetchAhead = 16;
constexpr size_t kPrefetchBytes = 32 * 1024;
// Up to this many cells, 16-bit cells hold every slot (slots < cells / 2).
constexpr size_t kMaxCells16 = 131072;

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
  const size_t expected = std::max<size_t>(num_keys_, 1);  // the last build's distinct keys
  num_keys_ = 1;
  num_entries_ = n;
  built_cells_ = 0;
  if (n == 0) return;
  const uint32_t* idx = rows.indices.data() + rows.offsets[0];
  // Cells for the distinct keys, not the entries: 4 per key of the last
  // build, never more than 4 per entry, regrown when a build passes load 1/2
  // (a 20-row Criteo minibatch has ~780 entries but ~490 keys; a local round
  // of 2560 rows ~100k and ~18k: 128 KB of cells instead of 1 MB to clear).
  // bench_models BM_KeyMap: 20 rows 2.65 -> 2.0 us, 2560 rows unchanged.
  size_t cells = std::bit_ceil(std::max(kMinCells, 4 * std::min(n, 2 * expected)));
  size_t done = 0;
  bool fresh_table = true;
  for (;;) {
    if (cells <= kMaxCells16) {
      Ensure(&cells16_, &cells16_capacity_, cells);
      done = BuildWith(cells16_.get(), cells, idx, n, done, fresh_table);
    } else {
      Ensure(&cells32_, &cells32_capacity_, cells);
      done = BuildWith(cells32_.get(), cells, idx, n, done, fresh_table);
    }
    if (done == n) {
      built_cells_ = cells;
      return;
    }
    // Past load 1/2: regrow, re-enter the keys so far, go on. At most to
    // 2 (n + 1) cells, where n entries (and the bias) fit below half: a
    // build that stopped had fewer cells (keys so far <= entries so far).
    cells = std::min(cells * 4, std::bit_ceil(2 * n + 2));
    fresh_table = false;
  }
}

template <typename Cell>
size_t KeyMap::BuildWith(Cell* cells, size_t num_cells, const uint32_t* idx, size_t n, size_t from,
                         bool fresh) {
  std::memset(cells, 0, num_cells * sizeof(Cell));
  const size_t mask = num_cells - 1;
  const auto shift = static_cast<uint32_t>(64 - std::countr_zero(num_cells));
  // Locals: stores through the arrays could otherwise alias the members and
  // force reloads per entry.
  uint64_t* keys = keys_.get();  // keys[0] is the bias: never equal to a 32-bit index
  uint32_t* out = slots_.get();
  uint32_t next = static_cast<uint32_t>(num_keys_);
  if (!fresh) {  // a regrown table: the keys found so far go back first
    for (uint32_t s = 1; s < next; ++s) {
      size_t h = Home(static_cast<uint32_t>(keys[s]), shift);
      while (cells[h] != 0) h = (h + 1) & mask;
      cells[h] = static_cast<Cell>(s);
    }
  }
  const uint32_t limit = static_cast<uint32_t>(num_cells / 2);  // load <= 1/2
  // A table past the first-level cache (a local round's) has its home cells
  // fetched ahead: bench_models BM_KeyMap/2560 319 -> 268 us and 370 -> 283 us
  // (medians of two sets of 5 interleaved runs); a minibatch's table (20 or
  // 200 rows: unchanged) stays in that cache, where prefetches would only
  // cost. The loop is compiled with and without them: no test per entry.
  auto map = [&](auto prefetch) {
    size_t i = from;
    for (; i < n; ++i) {
      if (next >= limit) [[unlikely]] break;
      if constexpr (decltype(prefetch)::value) {
        if (i + kPrefetchAhead < n)
          __builtin_prefetch(cells + Home(static_cast<uint32_t>(idx[i + kPrefetchAhead]), shift), 1);
      }
      const uint64_t key = idx[i];
      size_t h = Home(static_cast<uint32_t>(key), shift);
      uint32_t c = cells[h];
      // Probe on only when the home cell holds another key (rare at low load).
      const uint64_t taken = Opaque(c != 0), other = Opaque(keys[c] != key);
      if (taken & other) [[unlikely]] {
        do {
          h = (h + 1) & mask;
          c = cells[h];
        } while (c != 0 && keys[c] != key);
      }
      // New key: take slot `next`. Written without a branch (a hit rewrites
      // its own cell; keys[next] is overwritten until a new key claims it).
      const uint32_t is_new = c == 0;
      c |= next & (0u - is_new);
      cells[h] = static_cast<Cell>(c);
      keys[next] = key;
      out[i] = c;
      next += is_new;
    }
    return i;
  };
  const size_t i = num_cells * sizeof(Cell) > kPrefetchBytes ? map(std::true_type{})
                                                             : map(std::false_type{});
  num_keys_ = next;
  return i;
}

void KeyMap::Find(std::span<const uint64_t> keys, std::span<uint32_t> out) const {
  if (built_cells_ == 0) {  // only the bias
    for (size_t i = 0; i < keys.size(); ++i) out[i] = keys[i] == kBiasKey ? kBiasSlot : kAbsent;
  } else if (built_cells_ <= kMaxCells16) {
    FindWith(cells16_.get(), keys, out);
  } else {
    FindWith(cells32_.get(), keys, out);
  }
}

template <typename Cell>
void KeyMap::FindWith(const Cell* cells, std::span<const uint64_t> keys,
                      std::span<uint32_t> out) const {
  const size_t mask = built_cells_ - 1;
  const auto shift = static_cast<uint32_t>(64 - std::countr_zero(built_cells_));
  const uint64_t* known = keys_.get();
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint64_t key = keys[i];
    uint32_t slot = kAbsent;
    if (key == kBiasKey) {
      slot = kBiasSlot;
    } else if (key <= UINT32_MAX) {  // the table holds 32-bit feature indices only
      for (size_t h = Home(static_cast<uint32_t>(key), shift);; h = (h + 1) & mask) {
        const uint32_t c = cells[h];
        if (c == 0) break;  // load <= 1/2: a free cell ends every probe
        if (known[c] == key) {
          slot = c;
          break;
        }
      }
    }
    out[i] = slot;
  }
}

size_t KeyMap::capacity_bytes() const {
  return cells16_capacity_ * sizeof(uint16_t) + cells32_capacity_ * sizeof(uint32_t) +
         keys_capacity_ * sizeof(uint64_t) + entries_capacity_ * sizeof(uint32_t);
}

std::span<const uint32_t> DistinctSlots::Of(std::span<const uint32_t> slots, uint32_t bias_slot,
                                             uint32_t num_slots) {
  if (stamp_.size() < num_slots) stamp_.resize(num_slots, 0);  // 0: never a generation
  if (out_.size() < slots.size() + 1) out_.resize(slots.size() + 1);
  if (++gen_ == 0) {  // wrapped: stamps of 2^32 calls ago would match again
    std::fill(stamp_.begin(), stamp_.end(), 0);
    gen_ = 1;
  }
  const uint32_t g = gen_;
  uint32_t* stamp = stamp_.data();
  uint32_t* out = out_.data();
  stamp[bias_slot] = g;
  out[0] = bias_slot;
  size_t n = 1;
  for (const uint32_t s : slots) {
    out[n] = s;  // kept only if the slot was not listed yet
    n += stamp[s] != g;
    stamp[s] = g;
  }
  return {out, n};
}

}  // namespace virga
