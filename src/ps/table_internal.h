// Pieces shared by the sparse and dense tables: the key hash, row layout,
// deterministic initial values, argument checks, the per-thread scratch that
// groups a call's keys by lock shard, and the stats counters.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "ps/table.h"

namespace virga::ps::internal {

// Both kinds spread keys over 64 locks: sparse by the top bits of ShardHash,
// dense by 4096-row blocks taken round robin.
constexpr uint32_t kShardBits = 6;
constexpr uint32_t kShards = 1u << kShardBits;
constexpr uint32_t kDenseBlockBits = 12;  // 4096 rows per dense lock block

// murmur3's 64-bit finalizer: a bijection whose every output bit depends on
// every input bit.
inline uint64_t MixKey(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// The sparse table's key hash, read from the top down: the top kShardBits
// pick the shard, the bits below them the probe start. A full mix: a single
// multiply (Fibonacci hashing) was measured ~0.3 ns a key cheaper but
// clusters strided keys (key * 4096: 2.6x longer probes at load 1/2).
inline uint64_t ShardHash(uint64_t x) { return MixKey(x); }

// Floats per stored row: [width weights | width * state width state].
inline uint32_t RowFloats(const TableConfig& c) {
  return c.width * (1 + static_cast<uint32_t>(OptimizerStateWidth(c.optimizer.kind)));
}

// Writes the initial weights of `key` (c.width floats): zeros, or uniform
// [-s, s) / normal(0, s) drawn from a hash of (seed, key, column).
void InitWeights(const TableConfig& c, uint64_t key, float* w);

// Writes a whole initial row: InitWeights then the initial optimizer state.
void InitRow(const TableConfig& c, uint64_t key, float* row);

// InvalidArgument unless values == keys * width (and keys fit the scratch).
Status CheckSizes(const TableConfig& c, size_t keys, size_t values, const char* what);
// The same for replica rows (ReplicaRowFloats per key), and steps >= 1.
Status CheckReplicaSizes(const TableConfig& c, size_t keys, size_t values, uint32_t steps,
                         const char* what);

// A call's keys grouped by shard: order[begin[s] .. begin[s+1]) are the
// indices of the keys of shard s, in their original order (stable), so
// duplicate keys in one push apply in order. tag[i] is the tag of keys[i]
// (the sparse table's ShardHash). row[j] is free for the table's use: the
// sparse table's push resolves key order[j] to its arena row there before it
// touches any weights, so map probes and float math do not share a loop.
struct ShardGroups {
  std::vector<uint64_t> tag;
  std::vector<uint32_t> order;
  std::vector<uint32_t> row;
  std::array<uint32_t, kShards + 1> begin{};
};

// This thread's scratch, reused across calls so the hot path allocates only
// when a call has more keys than any before it on this thread.
// REQUIRES: not used by two calls at once on one thread (tables never nest).
ShardGroups& ThreadShardGroups();

// Counting sort of the keys by shard_of(tag_of(key)) (which must be <
// kShards), about 2 ns a key. The keys are cut into kStreams contiguous
// chunks, each with its own counters, walked in lockstep: a run of keys in
// one shard (a small dense table has one) then makes kStreams independent
// chains of counter increments instead of one serial chain through memory,
// and the order stays stable because chunk c's keys of a shard precede
// chunk c + 1's.
template <typename TagOf, typename ShardOf>
void GroupByShard(std::span<const uint64_t> keys, TagOf tag_of, ShardOf shard_of,
                  ShardGroups* g) {
  constexpr size_t kStreams = 4;
  const size_t n = keys.size();
  if (g->order.size() < n) {
    g->tag.resize(n);
    g->order.resize(n);
    g->row.resize(n);
  }
  const uint64_t* __restrict key = keys.data();
  uint64_t* __restrict tag = g->tag.data();
  uint32_t* __restrict order = g->order.data();
  const size_t chunk = (n + kStreams - 1) / kStreams;  // chunk c: [c * chunk, +chunk) within [0, n)
  const size_t tail = n - std::min(n, (kStreams - 1) * chunk);  // the last, shortest chunk
  std::array<std::array<uint32_t, kShards>, kStreams> next{};
  auto count = [&](size_t c, size_t i) {
    const uint64_t t = tag_of(key[i]);
    tag[i] = t;
    ++next[c][shard_of(t)];
  };
  auto place = [&](size_t c, size_t i) {
    order[next[c][shard_of(tag[i])]++] = static_cast<uint32_t>(i);
  };
  for (size_t t = 0; t < tail; ++t) {
    for (size_t c = 0; c < kStreams; ++c) count(c, c * chunk + t);
  }
  for (size_t c = 0; c + 1 < kStreams; ++c) {
    for (size_t i = c * chunk + tail; i < std::min(n, c * chunk + chunk); ++i) count(c, i);
  }
  uint32_t sum = 0;
  for (uint32_t s = 0; s < kShards; ++s) {
    g->begin[s] = sum;
    for (size_t c = 0; c < kStreams; ++c) {
      const uint32_t k = next[c][s];
      next[c][s] = sum;
      sum += k;
    }
  }
  g->begin[kShards] = sum;
  for (size_t t = 0; t < tail; ++t) {
    for (size_t c = 0; c < kStreams; ++c) place(c, c * chunk + t);
  }
  for (size_t c = 0; c + 1 < kStreams; ++c) {
    for (size_t i = c * chunk + tail; i < std::min(n, c * chunk + chunk); ++i) place(c, i);
  }
}

// Stats counters: relaxed atomics, updated once per call.
struct Counters {
  std::atomic<uint64_t> pulls{0}, pushes{0}, keys_pulled{0}, keys_pushed{0};

  void CountPull(size_t keys) {
    pulls.fetch_add(1, std::memory_order_relaxed);
    keys_pulled.fetch_add(keys, std::memory_order_relaxed);
  }
  void CountPush(size_t keys) {
    pushes.fetch_add(1, std::memory_order_relaxed);
    keys_pushed.fetch_add(keys, std::memory_order_relaxed);
  }
  void Fill(TableStats* s) const {
    s->pulls = pulls.load(std::memory_order_relaxed);
    s->pushes = pushes.load(std::memory_order_relaxed);
    s->keys_pulled = keys_pulled.load(std::memory_order_relaxed);
    s->keys_pushed = keys_pushed.load(std::memory_order_relaxed);
  }
};

}  // namespace virga::ps::internal
