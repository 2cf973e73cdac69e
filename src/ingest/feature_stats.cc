#include "ingest/feature_stats.h"

#include <algorithm>

namespace virga {

void FeatureStatsAccumulator::Acc::Add(double v) {
  if (count == 0) {
    min = max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  ++count;
  sum += v;
  sum_sq += v * v;
}

void FeatureStatsAccumulator::Grow(uint32_t index) {
  if (index < ones_.size()) return;
  size_t n = std::max<size_t>(size_t{index} + 1, ones_.size() * 2);
  n = std::min<size_t>(n, kDenseLimit);
  ones_.resize(n, 0);
  slot_.resize(n, 0);
}

FeatureStatsAccumulator::Acc& FeatureStatsAccumulator::Slot(uint32_t index) {
  if (index < kDenseLimit) {
    Grow(index);
    if (slot_[index] == 0) {
      accs_.emplace_back();
      acc_index_.push_back(index);
      slot_[index] = static_cast<uint32_t>(accs_.size());
    }
    return accs_[slot_[index] - 1];
  }
  return sparse_[index];
}

void FeatureStatsAccumulator::Add(const RowBlockView& rows) {
  if (rows.rows() == 0) return;
  const size_t begin = rows.offsets[0], end = rows.offsets[rows.rows()];
  uint32_t max_index = 0;
  for (size_t p = begin; p < end; ++p) max_index = std::max(max_index, rows.indices[p]);
  if (end > begin) {
    index_bound_ = std::max<uint64_t>(index_bound_, uint64_t{max_index} + 1);
    Grow(std::min(max_index, kDenseLimit - 1));
  }
  for (size_t p = begin; p < end; ++p) {
    const uint32_t index = rows.indices[p];
    const float v = rows.value(p);
    if (v == 1.0f) {
      if (index < kDenseLimit) {
        ++ones_[index];
      } else {
        ++sparse_ones_[index];
      }
    } else {
      Slot(index).Add(v);
    }
  }
}

std::vector<FeatureStat> FeatureStatsAccumulator::NumericStats() const {
  std::vector<FeatureStat> out;
  auto emit = [&out](uint32_t index, const Acc& acc, uint64_t ones) {
    if (acc.count == 0) return;  // binary feature: only 1s stored
    FeatureStat s;
    s.index = index;
    s.count = acc.count + ones;
    s.min = ones ? std::min(acc.min, 1.0) : acc.min;
    s.max = ones ? std::max(acc.max, 1.0) : acc.max;
    s.sum = acc.sum + static_cast<double>(ones);
    s.sum_sq = acc.sum_sq + static_cast<double>(ones);
    out.push_back(s);
  };
  std::vector<uint32_t> order(acc_index_);
  std::sort(order.begin(), order.end());
  for (uint32_t index : order) emit(index, accs_[slot_[index] - 1], ones_[index]);
  std::vector<uint32_t> big;
  for (const auto& [index, acc] : sparse_) big.push_back(index);
  std::sort(big.begin(), big.end());
  for (uint32_t index : big) {
    auto it = sparse_ones_.find(index);
    emit(index, sparse_.at(index), it == sparse_ones_.end() ? 0 : it->second);
  }
  return out;
}

}  // namespace virga
