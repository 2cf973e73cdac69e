// FeatureStatsAccumulator: per-feature statistics of stored entries, built
// block by block during ingest (on the fold thread; an entry costs about one
// cache-line update, ~10 ns when the features do not fit in cache).
//
// Layout, for indices below kDenseLimit, indexed directly by the feature
// index (no indirection, no sort: NumericStats walks them in index order):
//  - ones: a uint64 count of entries equal to 1 (all a binary feature needs);
//  - cells: a 32-byte Cell (count, min, max, sum, sum of squares) of the
//    other entries, array-of-structs so that an entry touches one line.
// Both live in anonymous memory mapped once and backed by the OS only where
// touched. Larger indices go to a hash map, so a LIBSVM file with a few huge
// indices does not allocate gigabytes.
//
// Memory bound: 8 bytes per dense index up to the largest seen, plus 32 bytes
// per dense index up to the largest one with a value != 1 (granularity: the
// pages touched, 2 MiB with huge pages): at most 80 MiB (kDenseLimit = 2^21);
// 8 MiB for Criteo's 2^20 binary features, 40 MiB for 2^20 real-valued
// LIBSVM features. Plus ~80 bytes per distinct index >= kDenseLimit.
//
// Thread safety: none; one thread adds, then reads.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "virga/dataset.h"
#include "virga/row_block.h"

namespace virga {

class FeatureStatsAccumulator {
 public:
  static constexpr uint32_t kDenseLimit = 1u << 21;

  FeatureStatsAccumulator() = default;
  FeatureStatsAccumulator(const FeatureStatsAccumulator&) = delete;
  FeatureStatsAccumulator& operator=(const FeatureStatsAccumulator&) = delete;
  ~FeatureStatsAccumulator() { Release(); }

  // Adds every entry of `rows`.
  void Add(const RowBlockView& rows);

  // Stats of numeric features (any stored value != 1), sorted by index.
  std::vector<FeatureStat> NumericStats() const;

  // (index, entries) of the binary features (every entry 1), sorted by index:
  // what a merge of several accumulators' NumericStats needs for a feature
  // that is numeric in one and binary in another.
  std::vector<std::pair<uint32_t, uint64_t>> BinaryCounts() const;

  // Largest index seen + 1 (0 if no entry).
  uint64_t index_bound() const { return index_bound_; }

  // Frees the per-feature state (index_bound() is kept).
  void Release();

 private:
  // Entries != 1 of a feature. All-zero bytes is the empty cell, so fresh
  // pages need no initialization; min/max are meaningful once count > 0.
  // Values are floats, so float min/max are exact.
  struct Cell {
    uint64_t count;
    float min;
    float max;
    double sum;
    double sum_sq;
    void Add(float v) {
      const bool first = count == 0;
      ++count;
      min = first || v < min ? v : min;
      max = first || v > max ? v : max;
      sum += v;
      sum_sq += double{v} * v;
    }
  };
  static_assert(sizeof(Cell) == 32, "two cells per cache line");
  struct SparseEntry {
    Cell cell{};
    uint64_t ones = 0;
  };

  bool MapDense();
  template <bool kBinary>
  void AddEntries(const RowBlockView& rows, size_t begin, size_t end);
  void AddSparse(uint32_t index, float v);
  static FeatureStat Stat(uint32_t index, const Cell& cell, uint64_t ones);

  // kDenseLimit cells, then kDenseLimit ones counters, in one mapping; null
  // until the first entry (or if mapping failed: then all goes to sparse_).
  void* dense_ = nullptr;
  Cell* cells_ = nullptr;
  uint64_t* ones_ = nullptr;
  uint32_t dense_bound_ = 0;                          // dense indices seen are < this
  std::unordered_map<uint32_t, SparseEntry> sparse_;  // index >= kDenseLimit
  uint64_t index_bound_ = 0;
};

}  // namespace virga
