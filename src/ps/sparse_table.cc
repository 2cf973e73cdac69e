#include "ps/sparse_table.h"

#include <array>
#include <bit>
#include <cstring>

#include "ps/optimizer_kernels.h"
#include "ps/replica.h"

namespace virga::ps {

using internal::kShardBits;
using internal::kShards;

namespace {

// Shard groups in flight ahead of the one being processed: their home cells
// are prefetched while it runs.
constexpr uint32_t kAhead = 2;

}  // namespace

SparseTable::SparseTable(const TableConfig& config)
    : config_(config),
      row_floats_(internal::RowFloats(config)),
      cell_bytes_((sizeof(uint64_t) + sizeof(uint32_t) + row_floats_ * sizeof(float) + 7) / 8 * 8),
      shards_(new Shard[kShards]) {}

internal::ShardGroups& SparseTable::Group(std::span<const uint64_t> keys) {
  internal::ShardGroups& g = internal::ThreadShardGroups();
  internal::GroupByShard(
      keys, [](uint64_t key) { return internal::ShardHash(key); },
      [](uint64_t h) { return static_cast<uint32_t>(h >> (64 - kShardBits)); }, &g);
  return g;
}

size_t SparseTable::CapacityFor(size_t n) {
  if (n == 0) return 0;
  size_t cap = kMinCells;
  while (4 * n > 3 * cap) cap *= 2;
  return cap;
}

uint32_t SparseTable::InsertCell(Shard& s, uint64_t key, uint64_t h, bool* grew) {
  if (4 * (s.size + 1) > 3 * s.cap) {  // keeps a free cell: probes end
    Resize(s, s.cap == 0 ? kMinCells : 2 * s.cap);
    *grew = true;
  }
  const size_t mask = s.cap - 1;
  size_t i = Slot(s, h);
  while (CellUsed(Cell(s, i))) i = (i + 1) & mask;
  std::byte* c = Cell(s, i);
  const uint32_t used = 1;
  std::memcpy(c, &key, sizeof key);
  std::memcpy(c + sizeof key, &used, sizeof used);
  internal::InitRow(config_, key, CellRow(c));
  ++s.size;
  rows_.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint32_t>(i);
}

void SparseTable::Resize(Shard& s, size_t cap) {
  auto cells = std::make_unique<std::byte[]>(cap * cell_bytes_);  // zeroed: every cell free
  const size_t mask = cap - 1;
  const auto shift = static_cast<uint32_t>(64 - std::countr_zero(cap));
  for (size_t i = 0; i < s.cap; ++i) {
    const std::byte* old = Cell(s, i);
    if (!CellUsed(old)) continue;
    size_t j = (internal::ShardHash(CellKey(old)) << kShardBits) >> shift;
    while (CellUsed(cells.get() + j * cell_bytes_)) j = (j + 1) & mask;
    std::memcpy(cells.get() + j * cell_bytes_, old, cell_bytes_);
  }
  s.cells = std::move(cells);
  s.cap = cap;
  s.slot_shift = shift;
}

size_t SparseTable::ListStart(const SparseTable& t, const Shard& s) {
  size_t i = 0;
  while (CellUsed(t.Cell(s, i))) ++i;  // load <= 3/4: a free cell exists
  return i + 1;
}

template <typename Resolve, typename Body>
void SparseTable::Pipeline(internal::ShardGroups& g, Resolve resolve, Body body) {
  std::array<uint32_t, kShards> live;  // the shards this call touches, ascending
  uint32_t m = 0;
  for (uint32_t s = 0; s < kShards; ++s)
    if (g.begin[s] != g.begin[s + 1]) live[m++] = s;
  std::array<std::unique_lock<std::mutex>, kAhead + 1> locks;  // stage t's lock in locks[t % 3]
  for (uint32_t t = 0; t < m + kAhead; ++t) {
    if (t < m) {
      Shard& shard = shards_[live[t]];
      locks[t % (kAhead + 1)] = std::unique_lock<std::mutex>(shard.mu);
      if (shard.cap != 0) {
        for (uint32_t j = g.begin[live[t]]; j < g.begin[live[t] + 1]; ++j) {
          const std::byte* c = Cell(shard, Slot(shard, g.tag[g.order[j]]));
          __builtin_prefetch(c);
          __builtin_prefetch(c + cell_bytes_ - 1);  // a cell may straddle two lines
        }
      }
    }
    if (t >= kAhead) {
      const uint32_t s = live[t - kAhead];
      resolve(shards_[s], g.begin[s], g.begin[s + 1]);
      body(shards_[s], g.begin[s], g.begin[s + 1]);
      locks[(t - kAhead) % (kAhead + 1)].unlock();
    }
  }
}

Status SparseTable::Pull(std::span<const uint64_t> keys, std::span<float> out, uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(internal::CheckSizes(config_, keys.size(), out.size(), "pull output"));
  const uint64_t v = version_.load(std::memory_order_acquire);
  internal::ShardGroups& g = Group(keys);
  const uint32_t width = config_.width;
  Pipeline(
      g,
      [&](const Shard& shard, uint32_t begin, uint32_t end) { FindCells(shard, keys, g, begin, end); },
      [&](const Shard& shard, uint32_t begin, uint32_t end) {
        for (uint32_t j = begin; j < end; ++j) {
          const uint32_t i = g.order[j];
          const uint32_t cell = g.row[j];
          float* dst = out.data() + size_t{i} * width;
          if (cell == kEmpty) {
            internal::InitWeights(config_, keys[i], dst);
          } else if (width == 1) {  // the common linear model: no memcpy call
            *dst = *CellRow(Cell(shard, cell));
          } else {
            std::memcpy(dst, CellRow(Cell(shard, cell)), width * sizeof(float));
          }
        }
      });
  counters_.CountPull(keys.size());
  if (version) *version = v;
  return Status::OK();
}

Status SparseTable::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                         uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(internal::CheckSizes(config_, keys.size(), grads.size(), "push gradient"));
  const float lr =
      ScheduledLearningRate(config_.optimizer, version_.load(std::memory_order_relaxed));
  internal::ShardGroups& g = Group(keys);
  const uint32_t width = config_.width;
  optimizer_internal::WithKernel(config_.optimizer, lr, [&](const auto& kernel) {
    Pipeline(
        g,
        // Resolve (and insert) every cell before touching weights: the float
        // math then runs free of the probe loop's branch misses.
        [&](Shard& shard, uint32_t begin, uint32_t end) {
          FindOrInsertCells(shard, keys, g, begin, end);
        },
        [&](Shard& shard, uint32_t begin, uint32_t end) {
          for (uint32_t j = begin; j < end; ++j) {
            const float* grad = grads.data() + size_t{g.order[j]} * width;
            optimizer_internal::ApplyRow(kernel, CellRow(Cell(shard, g.row[j])), grad, width);
          }
        });
  });
  counters_.CountPush(keys.size());
  const uint64_t v = version_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (version) *version = v;
  return Status::OK();
}

Status SparseTable::PullState(std::span<const uint64_t> keys, std::span<float> out,
                              uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(
      internal::CheckReplicaSizes(config_, keys.size(), out.size(), 1, "state pull output"));
  const uint64_t v = version_.load(std::memory_order_acquire);
  internal::ShardGroups& g = Group(keys);
  const ReplicaRows replica(config_, 0.0f);
  const uint32_t rf = replica.floats();
  thread_local std::vector<float> init;  // an absent key's initial row
  init.resize(row_floats_);
  Pipeline(
      g,
      [&](const Shard& shard, uint32_t begin, uint32_t end) { FindCells(shard, keys, g, begin, end); },
      [&](const Shard& shard, uint32_t begin, uint32_t end) {
        for (uint32_t j = begin; j < end; ++j) {
          const uint32_t i = g.order[j];
          const uint32_t cell = g.row[j];
          const float* row = CellRow(Cell(shard, cell == kEmpty ? 0 : cell));
          if (cell == kEmpty) {
            internal::InitRow(config_, keys[i], init.data());
            row = init.data();
          }
          replica.Extract(row, out.data() + size_t{i} * rf);
        }
      });
  counters_.CountPull(keys.size());
  if (version) *version = v;
  return Status::OK();
}

Status SparseTable::PushDelta(std::span<const uint64_t> keys, std::span<const float> deltas,
                              uint32_t steps, uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(
      internal::CheckReplicaSizes(config_, keys.size(), deltas.size(), steps, "state delta"));
  const float lr =
      ScheduledLearningRate(config_.optimizer, version_.load(std::memory_order_relaxed));
  internal::ShardGroups& g = Group(keys);
  const ReplicaRows replica(config_, lr);
  const uint32_t rf = replica.floats();
  Pipeline(
      g,
      [&](Shard& shard, uint32_t begin, uint32_t end) { FindOrInsertCells(shard, keys, g, begin, end); },
      [&](Shard& shard, uint32_t begin, uint32_t end) {
        for (uint32_t j = begin; j < end; ++j) {
          replica.Add(CellRow(Cell(shard, g.row[j])), deltas.data() + size_t{g.order[j]} * rf);
        }
      });
  counters_.CountPush(keys.size());
  const uint64_t v = version_.fetch_add(steps, std::memory_order_acq_rel) + steps;
  if (version) *version = v;
  return Status::OK();
}

TableStats SparseTable::stats() const {
  TableStats st;
  st.rows = rows_.load(std::memory_order_relaxed);
  st.bytes = st.rows * row_floats_ * sizeof(float);
  st.version = version();
  counters_.Fill(&st);
  return st;
}

Status SparseTable::Serialize(std::string* out) const {
  internal::TableWriter writer(config_, version(), out);
  for (uint32_t s = 0; s < kShards; ++s) {
    const Shard& shard = shards_[s];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.size == 0) continue;
    const size_t start = ListStart(*this, shard), mask = shard.cap - 1;
    for (size_t k = 0; k < shard.cap; ++k) {
      const std::byte* c = Cell(shard, (start + k) & mask);
      if (CellUsed(c)) writer.AddKeyedRow(CellKey(c), CellRow(c), row_floats_);
    }
  }
  writer.Finish();
  return Status::OK();
}

void SparseTable::ForEach(const std::function<void(uint64_t, std::span<const float>)>& fn) const {
  const uint32_t width = config_.width;
  std::vector<uint64_t> keys;
  std::vector<float> weights;
  for (uint32_t s = 0; s < kShards; ++s) {
    {
      const Shard& shard = shards_[s];
      std::lock_guard<std::mutex> lock(shard.mu);
      keys.clear();
      weights.clear();
      if (shard.size == 0) continue;
      const size_t start = ListStart(*this, shard), mask = shard.cap - 1;
      for (size_t k = 0; k < shard.cap; ++k) {
        const std::byte* c = Cell(shard, (start + k) & mask);
        if (!CellUsed(c)) continue;
        keys.push_back(CellKey(c));
        weights.insert(weights.end(), CellRow(c), CellRow(c) + width);
      }
    }
    for (size_t row = 0; row < keys.size(); ++row) {
      fn(keys[row], std::span<const float>(&weights[row * width], width));
    }
  }
}

Status SparseTable::LoadRows(const internal::ParsedTable& parsed, std::string_view source) {
  const size_t row_bytes = size_t{row_floats_} * sizeof(float);
  const size_t stride = sizeof(uint64_t) + row_bytes;
  // Size every shard for its final row count first, so no shard grows while
  // the rows go back into their cells in the order they were listed.
  std::array<size_t, kShards> rows{};
  for (uint64_t r = 0; r < parsed.rows; ++r) {
    uint64_t key;
    std::memcpy(&key, parsed.payload.data() + r * stride, sizeof key);
    ++rows[internal::ShardHash(key) >> (64 - kShardBits)];
  }
  for (uint32_t s = 0; s < kShards; ++s) {
    std::lock_guard<std::mutex> lock(shards_[s].mu);
    if (rows[s] != 0) Resize(shards_[s], CapacityFor(rows[s]));
  }
  const char* p = parsed.payload.data();
  for (uint64_t r = 0; r < parsed.rows; ++r, p += stride) {
    uint64_t key;
    std::memcpy(&key, p, sizeof key);
    const uint64_t h = internal::ShardHash(key);
    Shard& shard = shards_[h >> (64 - kShardBits)];
    std::lock_guard<std::mutex> lock(shard.mu);
    if (FindCell(shard, key, h) != kEmpty) {
      return Status::Corruption(std::string(source) + ": table: duplicate key " +
                                std::to_string(key));
    }
    bool grew = false;
    const uint32_t cell = InsertCell(shard, key, h, &grew);
    std::memcpy(CellRow(Cell(shard, cell)), p + sizeof(uint64_t), row_bytes);
  }
  version_.store(parsed.version, std::memory_order_release);
  return Status::OK();
}

}  // namespace virga::ps
