// FeatureStatsAccumulator: per-feature statistics of stored entries, built
// block by block during ingest. Indices below kDenseLimit live in flat arrays
// (grown on demand); larger indices go to a hash map, so a LIBSVM file with a
// few huge indices does not allocate gigabytes.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "virga/dataset.h"
#include "virga/row_block.h"

namespace virga {

class FeatureStatsAccumulator {
 public:
  static constexpr uint32_t kDenseLimit = 1u << 22;  // 32 MB of dense arrays at most

  // Adds every entry of `rows`.
  void Add(const RowBlockView& rows);

  // Stats of numeric features (any stored value != 1), sorted by index.
  std::vector<FeatureStat> NumericStats() const;

  // Largest index seen + 1 (0 if no entry).
  uint64_t index_bound() const { return index_bound_; }

 private:
  struct Acc {
    uint64_t count = 0;  // entries with value != 1 folded into min/max/sum
    double min = 0, max = 0, sum = 0, sum_sq = 0;
    void Add(double v);
  };
  void Grow(uint32_t index);
  Acc& Slot(uint32_t index);

  // Dense part, by index: count of entries equal to 1, and 1 + position in
  // accs_ of the feature's valued-entry statistics (0: none yet). Numeric
  // features are usually few, so accs_ stays small even for 2^22 indices.
  std::vector<uint32_t> ones_;
  std::vector<uint32_t> slot_;
  std::vector<Acc> accs_;
  std::vector<uint32_t> acc_index_;  // index of accs_[i]
  std::unordered_map<uint32_t, Acc> sparse_;        // index >= kDenseLimit
  std::unordered_map<uint32_t, uint64_t> sparse_ones_;
  uint64_t index_bound_ = 0;
};

}  // namespace virga
