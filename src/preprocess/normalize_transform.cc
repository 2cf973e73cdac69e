// The transform half of normalization: scale one partition with a fitted
// Scaler and write it under a new key.
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "preprocess/stats_internal.h"
#include "virga/normalize.h"

namespace virga {

namespace {

using preprocess_internal::Accumulate;

// Scaler position of a feature by a dense table (small index spaces).
struct DenseLookup {
  const std::vector<int32_t>* slot;
  int32_t operator()(uint32_t index) const { return index < slot->size() ? (*slot)[index] : -1; }
};

// Scaler position of a feature by binary search (wide, hashed spaces).
struct SearchLookup {
  const std::vector<uint32_t>* index;
  int32_t operator()(uint32_t i) const {
    auto it = std::lower_bound(index->begin(), index->end(), i);
    return it != index->end() && *it == i ? static_cast<int32_t>(it - index->begin()) : -1;
  }
};

// Scales entries [begin, end) of `in` into `values` (already a copy of the
// input values, or all 1 for a binary input) and accumulates the scaled
// values per scaler position into `stats`. Returns whether any entry was
// scaled. A template over the lookup so the inner loop has no indirect call.
template <typename Lookup>
bool ScaleEntries(const RowBlockView& in, const Scaler& scaler, Lookup lookup,
                  std::vector<float>* values, std::vector<FeatureStat>* stats) {
  const uint32_t begin = in.offsets[0];
  const uint32_t end = in.offsets[in.rows()];
  bool any = false;
  for (uint32_t pos = begin; pos < end; ++pos) {
    const int32_t k = lookup(in.indices[pos]);
    if (k < 0) continue;
    const double scale = scaler.scale[k];
    // A constant feature maps to exactly +0 (never -0 for test values below it).
    const float v =
        scale == 0 ? 0.0f : static_cast<float>(((*values)[pos] - scaler.shift[k]) * scale);
    (*values)[pos] = v;
    Accumulate(&(*stats)[k], v);
    any = true;
  }
  return any;
}

// Fills scratch->slot with index -> scaler position when the table is small;
// returns false (and leaves it empty) when binary search should be used.
bool BuildDenseSlots(const Scaler& scaler, uint64_t nnz, std::vector<int32_t>* slot) {
  slot->clear();
  if (scaler.index.empty()) return true;
  const uint64_t table = static_cast<uint64_t>(scaler.index.back()) + 1;
  if (table > 4 * nnz + 65536) return false;
  slot->assign(table, -1);
  for (size_t k = 0; k < scaler.index.size(); ++k) {
    (*slot)[scaler.index[k]] = static_cast<int32_t>(k);
  }
  return true;
}

}  // namespace

Result<TransformResult> TransformPartition(ObjectStore& store, std::string_view in_key,
                                           std::string_view out_key, const Scaler& scaler,
                                           const PartitionEncodeOptions& encode,
                                           NormalizeScratch* scratch) {
  NormalizeScratch local;
  NormalizeScratch* s = scratch != nullptr ? scratch : &local;
  VIRGA_RETURN_IF_ERROR(store.Get(in_key, &s->in_bytes));
  VIRGA_RETURN_IF_ERROR(DecodePartition(s->in_bytes, in_key, &s->rows));
  const RowBlockView in = s->rows.view();

  // Values are indexed like `indices` (absolute positions), so copy them whole.
  if (in.binary()) {
    s->values.assign(in.indices.size(), 1.0f);
  } else {
    s->values.assign(in.values.begin(), in.values.end());
  }
  std::vector<FeatureStat> stats(scaler.size());
  bool any = false;
  if (in.nnz() > 0) {
    any = BuildDenseSlots(scaler, in.nnz(), &s->slot)
              ? ScaleEntries(in, scaler, DenseLookup{&s->slot}, &s->values, &stats)
              : ScaleEntries(in, scaler, SearchLookup{&scaler.index}, &s->values, &stats);
  }

  RowBlockView out = in;
  // A binary partition none of whose entries is scaled stays binary.
  out.values = in.binary() && !any ? std::span<const float>() : std::span<const float>(s->values);
  VIRGA_RETURN_IF_ERROR(
      EncodePartition(out, encode, &s->out_bytes).WithContext("encoding " + std::string(out_key)));
  VIRGA_RETURN_IF_ERROR(store.Put(out_key, s->out_bytes));

  TransformResult result;
  result.info.key = std::string(out_key);
  result.info.rows = out.rows();
  result.info.nnz = out.nnz();
  result.info.bytes = s->out_bytes.size();
  for (size_t k = 0; k < stats.size(); ++k) {
    if (stats[k].count == 0) continue;
    stats[k].index = scaler.index[k];
    result.scaled_stats.push_back(stats[k]);
  }
  return result;
}

}  // namespace virga
