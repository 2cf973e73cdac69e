// The statistics half of normalization: per-partition feature statistics,
// their reduction, and fitting a Scaler from the reduced train statistics.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "preprocess/stats_internal.h"
#include "virga/normalize.h"

namespace virga {

namespace {

using preprocess_internal::Accumulate;

// Dense accumulation: one slot per index up to the largest index seen. Used
// when that table is not much larger than the entries themselves.
std::vector<FeatureStat> DenseStats(const RowBlockView& rows, uint32_t max_index) {
  std::vector<FeatureStat> slots(static_cast<size_t>(max_index) + 1);
  const uint32_t begin = rows.offsets[0];
  const uint32_t end = rows.offsets[rows.rows()];
  for (uint32_t pos = begin; pos < end; ++pos) {
    Accumulate(&slots[rows.indices[pos]], rows.value(pos));
  }
  std::vector<FeatureStat> out;
  for (uint32_t i = 0; i <= max_index; ++i) {
    if (slots[i].count == 0) continue;
    slots[i].index = i;
    out.push_back(slots[i]);
  }
  return out;
}

// Sparse accumulation for wide feature spaces (hashed features): sort the
// entries by index and aggregate runs. O(nnz log nnz), O(nnz) memory.
std::vector<FeatureStat> SortedStats(const RowBlockView& rows) {
  const uint32_t begin = rows.offsets[0];
  const uint32_t end = rows.offsets[rows.rows()];
  std::vector<std::pair<uint32_t, float>> entries;
  entries.reserve(end - begin);
  for (uint32_t pos = begin; pos < end; ++pos) {
    entries.emplace_back(rows.indices[pos], rows.value(pos));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<FeatureStat> out;
  for (const auto& [index, value] : entries) {
    if (out.empty() || out.back().index != index) {
      out.emplace_back();
      out.back().index = index;
    }
    Accumulate(&out.back(), value);
  }
  return out;
}

}  // namespace

Result<NormalizeMethod> ParseNormalizeMethod(std::string_view name) {
  if (name == "minmax") return NormalizeMethod::kMinMax;
  if (name == "standard") return NormalizeMethod::kStandard;
  return Status::InvalidArgument("unknown normalization method '" + std::string(name) +
                                 "' (expected minmax or standard)");
}

const char* NormalizeMethodName(NormalizeMethod method) {
  switch (method) {
    case NormalizeMethod::kMinMax:
      return "minmax";
    case NormalizeMethod::kStandard:
      return "standard";
  }
  return "unknown";
}

std::vector<FeatureStat> ComputeRowStats(const RowBlockView& rows) {
  if (rows.nnz() == 0) return {};
  const uint32_t begin = rows.offsets[0];
  const uint32_t end = rows.offsets[rows.rows()];
  uint32_t max_index = 0;
  for (uint32_t pos = begin; pos < end; ++pos) max_index = std::max(max_index, rows.indices[pos]);
  // A dense table costs sizeof(FeatureStat) per slot; allow a few per entry.
  const uint64_t dense_limit = 4 * static_cast<uint64_t>(end - begin) + 4096;
  if (max_index < dense_limit) return DenseStats(rows, max_index);
  return SortedStats(rows);
}

Result<std::vector<FeatureStat>> ComputePartitionStats(ObjectStore& store, std::string_view key,
                                                       NormalizeScratch* scratch) {
  NormalizeScratch local;
  NormalizeScratch* s = scratch != nullptr ? scratch : &local;
  VIRGA_RETURN_IF_ERROR(store.Get(key, &s->in_bytes));
  VIRGA_RETURN_IF_ERROR(DecodePartition(s->in_bytes, key, &s->rows));
  return ComputeRowStats(s->rows.view());
}

void MergeStats(std::vector<FeatureStat>* a, const std::vector<FeatureStat>& b) {
  if (b.empty()) return;
  if (a->empty()) {
    *a = b;
    return;
  }
  std::vector<FeatureStat> out;
  out.reserve(a->size() + b.size());
  size_t i = 0, j = 0;
  while (i < a->size() || j < b.size()) {
    if (j == b.size() || (i < a->size() && (*a)[i].index < b[j].index)) {
      out.push_back((*a)[i++]);
    } else if (i == a->size() || b[j].index < (*a)[i].index) {
      out.push_back(b[j++]);
    } else {
      out.push_back((*a)[i++]);
      out.back().Merge(b[j++]);
    }
  }
  a->swap(out);
}

Scaler Scaler::Fit(NormalizeMethod method, const std::vector<FeatureStat>& stats) {
  Scaler scaler;
  scaler.method = method;
  for (const FeatureStat& s : stats) {
    if (!IsNumericFeature(s)) continue;
    double shift = 0;
    double range = 0;  // the divisor; 0 means "constant"
    if (s.max == s.min) {
      // Constant feature: map to 0 whatever the method (the divisor is 0).
      shift = s.min;
    } else if (method == NormalizeMethod::kMinMax) {
      shift = s.min;
      range = s.max - s.min;
    } else {
      shift = s.mean();
      range = std::sqrt(s.variance());
    }
    scaler.index.push_back(s.index);
    scaler.shift.push_back(shift);
    // A divisor that underflows or overflows (degenerate statistics) is
    // treated as constant rather than producing inf or NaN values.
    const double scale = range > 0 ? 1.0 / range : 0.0;
    scaler.scale.push_back(std::isfinite(scale) ? scale : 0.0);
  }
  return scaler;
}

}  // namespace virga
