#include "ps/sparse_table.h"

#include <array>
#include <bit>
#include <cstring>

#include "ps/optimizer_kernels.h"

namespace virga::ps {

using internal::kShardBits;
using internal::kShards;

SparseTable::SparseTable(const TableConfig& config)
    : config_(config), row_floats_(internal::RowFloats(config)), shards_(new Shard[kShards]) {}

internal::ShardGroups& SparseTable::Group(std::span<const uint64_t> keys) {
  internal::ShardGroups& g = internal::ThreadShardGroups();
  internal::GroupByShard(
      keys, [](uint64_t key) { return internal::ShardHash(key); },
      [](uint64_t h) { return static_cast<uint32_t>(h >> (64 - kShardBits)); }, &g);
  return g;
}

uint32_t SparseTable::InsertRow(Shard& s, uint64_t key, uint64_t h) {
  if (4 * (s.keys.size() + 1) > 3 * s.map.size()) Grow(s);  // keeps a free slot: probes end
  const size_t mask = s.map.size() - 1;
  size_t i = Slot(s, h);
  while (s.map[i].row != kEmpty) i = (i + 1) & mask;
  const auto row = static_cast<uint32_t>(s.keys.size());
  s.map[i] = Entry{key, row};
  s.keys.push_back(key);
  s.arena.resize(s.arena.size() + row_floats_);  // amortised: vector grows geometrically
  internal::InitRow(config_, key, s.arena.data() + size_t{row} * row_floats_);
  rows_.fetch_add(1, std::memory_order_relaxed);
  return row;
}

void SparseTable::Grow(Shard& s) {
  const size_t cap = s.map.empty() ? 16 : 2 * s.map.size();
  s.map.assign(cap, Entry{0, kEmpty});
  s.slot_shift = static_cast<uint32_t>(64 - std::countr_zero(cap));
  const size_t mask = cap - 1;
  for (uint32_t row = 0; row < s.keys.size(); ++row) {
    size_t i = Slot(s, internal::ShardHash(s.keys[row]));
    while (s.map[i].row != kEmpty) i = (i + 1) & mask;
    s.map[i] = Entry{s.keys[row], row};
  }
}

template <typename Resolve, typename Body>
void SparseTable::Pipeline(internal::ShardGroups& g, Resolve resolve, Body body) {
  std::array<uint32_t, kShards> live;  // the shards this call touches, ascending
  uint32_t m = 0;
  for (uint32_t s = 0; s < kShards; ++s)
    if (g.begin[s] != g.begin[s + 1]) live[m++] = s;
  std::array<std::unique_lock<std::mutex>, 3> locks;  // stage t's lock in locks[t % 3]
  for (uint32_t t = 0; t < m + 2; ++t) {
    if (t < m) {
      Shard& shard = shards_[live[t]];
      locks[t % 3] = std::unique_lock<std::mutex>(shard.mu);
      if (!shard.map.empty()) {
        for (uint32_t j = g.begin[live[t]]; j < g.begin[live[t] + 1]; ++j)
          __builtin_prefetch(&shard.map[Slot(shard, g.tag[g.order[j]])]);
      }
    }
    if (t >= 1 && t - 1 < m) {
      const uint32_t s = live[t - 1];
      Shard& shard = shards_[s];
      resolve(shard, g.begin[s], g.begin[s + 1]);
      const float* arena = shard.arena.data();
      for (uint32_t j = g.begin[s]; j < g.begin[s + 1]; ++j)
        if (g.row[j] != kEmpty) __builtin_prefetch(arena + size_t{g.row[j]} * row_floats_);
    }
    if (t >= 2) {
      const uint32_t s = live[t - 2];
      body(shards_[s], g.begin[s], g.begin[s + 1]);
      locks[(t - 2) % 3].unlock();
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
      [&](const Shard& shard, uint32_t begin, uint32_t end) {
        for (uint32_t j = begin; j < end; ++j)
          g.row[j] = FindRow(shard, keys[g.order[j]], g.tag[g.order[j]]);
      },
      [&](const Shard& shard, uint32_t begin, uint32_t end) {
        for (uint32_t j = begin; j < end; ++j) {
          const uint32_t i = g.order[j];
          const uint32_t row = g.row[j];
          float* dst = out.data() + size_t{i} * width;
          if (row == kEmpty) {
            internal::InitWeights(config_, keys[i], dst);
          } else if (width == 1) {  // the common linear model: no memcpy call
            *dst = shard.arena[size_t{row} * row_floats_];
          } else {
            std::memcpy(dst, shard.arena.data() + size_t{row} * row_floats_, width * sizeof(float));
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
        // Resolve (and insert) every row before touching weights: the float
        // math then runs free of the probe loop's branch misses (measured
        // ~15% faster than one fused loop). Rows are numbers, not pointers:
        // an insert may move the arena.
        [&](Shard& shard, uint32_t begin, uint32_t end) {
          for (uint32_t j = begin; j < end; ++j)
            g.row[j] = FindOrInsertRow(shard, keys[g.order[j]], g.tag[g.order[j]]);
        },
        [&](Shard& shard, uint32_t begin, uint32_t end) {
          float* arena = shard.arena.data();
          for (uint32_t j = begin; j < end; ++j) {
            const float* grad = grads.data() + size_t{g.order[j]} * width;
            optimizer_internal::ApplyRow(kernel, arena + size_t{g.row[j]} * row_floats_, grad,
                                         width);
          }
        });
  });
  counters_.CountPush(keys.size());
  const uint64_t v = version_.fetch_add(1, std::memory_order_acq_rel) + 1;
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
    for (size_t row = 0; row < shard.keys.size(); ++row) {
      writer.AddKeyedRow(shard.keys[row], shard.arena.data() + row * row_floats_, row_floats_);
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
      keys = shard.keys;
      weights.resize(keys.size() * width);
      for (size_t row = 0; row < keys.size(); ++row) {
        std::memcpy(&weights[row * width], shard.arena.data() + row * row_floats_,
                    width * sizeof(float));
      }
    }
    for (size_t row = 0; row < keys.size(); ++row) {
      fn(keys[row], std::span<const float>(&weights[row * width], width));
    }
  }
}

Status SparseTable::LoadRows(const internal::ParsedTable& parsed, std::string_view source) {
  const char* p = parsed.payload.data();
  const size_t row_bytes = size_t{row_floats_} * sizeof(float);
  for (uint64_t r = 0; r < parsed.rows; ++r, p += sizeof(uint64_t) + row_bytes) {
    uint64_t key;
    std::memcpy(&key, p, sizeof key);
    const uint64_t h = internal::ShardHash(key);
    Shard& shard = shards_[h >> (64 - kShardBits)];
    std::lock_guard<std::mutex> lock(shard.mu);
    const size_t before = shard.keys.size();
    const uint32_t row = FindOrInsertRow(shard, key, h);
    if (shard.keys.size() == before) {
      return Status::Corruption(std::string(source) + ": table: duplicate key " +
                                std::to_string(key));
    }
    std::memcpy(shard.arena.data() + size_t{row} * row_floats_, p + sizeof(uint64_t), row_bytes);
  }
  version_.store(parsed.version, std::memory_order_release);
  return Status::OK();
}

}  // namespace virga::ps
