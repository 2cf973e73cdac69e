// Rows of a dataset in CSR form: the one in-memory layout every stage shares
// (parsers fill it, the partition codec stores it, the prefetching iterator
// yields views of it, model kernels read it).
//
// Feature indices are uint32 (hashed features use at most 2^32 slots; a
// parsed index beyond that is an input error). A row's features are
// indices[offsets[r] .. offsets[r+1]) with the values at the same positions;
// an empty `values` means every value is 1 (binary features).
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace virga {

// A non-owning view of rows [0, rows()). Slicing keeps `indices` and `values`
// whole and narrows `labels` and `offsets`, so a minibatch is a view into its
// partition's buffers without copying. offsets[0] need not be 0.
struct RowBlockView {
  std::span<const float> labels;      // rows()
  std::span<const uint32_t> offsets;  // rows() + 1, absolute into indices
  std::span<const uint32_t> indices;  // all entries of the underlying block
  std::span<const float> values;      // same size as indices, or empty (all 1)

  size_t rows() const { return labels.size(); }
  size_t nnz() const { return rows() == 0 ? 0 : offsets[rows()] - offsets[0]; }
  bool binary() const { return values.empty(); }

  std::span<const uint32_t> row_indices(size_t r) const {
    return indices.subspan(offsets[r], offsets[r + 1] - offsets[r]);
  }
  // REQUIRES: !binary().
  std::span<const float> row_values(size_t r) const {
    return values.subspan(offsets[r], offsets[r + 1] - offsets[r]);
  }
  float value(size_t pos) const { return values.empty() ? 1.0f : values[pos]; }

  // Rows [begin, end). REQUIRES: begin <= end <= rows().
  RowBlockView Slice(size_t begin, size_t end) const {
    assert(begin <= end && end <= rows());
    return RowBlockView{labels.subspan(begin, end - begin),
                        offsets.subspan(begin, end - begin + 1), indices, values};
  }
};

// Owning, growable rows. Parsers append features of a row then call EndRow;
// values are always kept while building, and `all_ones()` tells the codec it
// may drop them.
class RowBlock {
 public:
  RowBlock() { offsets_.push_back(0); }

  void AddFeature(uint32_t index, float value) {
    indices_.push_back(index);
    values_.push_back(value);
    all_ones_ = all_ones_ && value == 1.0f;
  }
  void EndRow(float label) {
    labels_.push_back(label);
    offsets_.push_back(static_cast<uint32_t>(indices_.size()));
  }
  // Appends the rows of `v` (values of a binary view as 1s), as AddFeature
  // and EndRow would, one copy per array. REQUIRES: pending() == 0.
  void AppendRows(const RowBlockView& v) {
    assert(pending() == 0);
    const size_t n = v.rows(), nnz = v.nnz(), at = indices_.size();
    labels_.insert(labels_.end(), v.labels.begin(), v.labels.end());
    const uint32_t shift = static_cast<uint32_t>(at) - v.offsets[0];  // mod 2^32, as offsets are
    const size_t o = offsets_.size();
    offsets_.resize(o + n);
    for (size_t r = 0; r < n; ++r) offsets_[o + r] = v.offsets[r + 1] + shift;
    const auto from = static_cast<std::ptrdiff_t>(v.offsets[0]);
    const auto to = from + static_cast<std::ptrdiff_t>(nnz);
    indices_.insert(indices_.end(), v.indices.begin() + from, v.indices.begin() + to);
    if (v.binary()) {
      values_.resize(at + nnz, 1.0f);
    } else {
      values_.insert(values_.end(), v.values.begin() + from, v.values.begin() + to);
      all_ones_ = all_ones_ && std::all_of(v.values.begin() + from, v.values.begin() + to,
                                           [](float x) { return x == 1.0f; });
    }
  }
  // Drops features added since the last EndRow (a line that failed to parse).
  void AbandonRow() {
    indices_.resize(offsets_.back());
    values_.resize(offsets_.back());
    // all_ones_ may stay false conservatively; that only costs space.
  }
  // Drops the last complete row (a row a later check rejects).
  // REQUIRES: rows() > 0 and no pending features.
  void PopRow() {
    assert(rows() > 0 && pending() == 0);
    labels_.pop_back();
    offsets_.pop_back();
    indices_.resize(offsets_.back());
    values_.resize(offsets_.back());
  }
  // Empties the block, keeping capacity.
  void Clear() {
    labels_.clear();
    indices_.clear();
    values_.clear();
    offsets_.assign(1, 0);
    all_ones_ = true;
  }
  void Reserve(size_t rows, size_t nnz) {
    labels_.reserve(rows);
    offsets_.reserve(rows + 1);
    indices_.reserve(nnz);
    values_.reserve(nnz);
  }

  size_t rows() const { return labels_.size(); }
  size_t nnz() const { return indices_.size(); }
  // Features of the row being built (added since the last EndRow).
  size_t pending() const { return indices_.size() - offsets_.back(); }
  bool all_ones() const { return all_ones_; }

  std::vector<float>& labels() { return labels_; }
  std::vector<uint32_t>& offsets() { return offsets_; }
  std::vector<uint32_t>& indices() { return indices_; }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& labels() const { return labels_; }
  const std::vector<uint32_t>& offsets() const { return offsets_; }
  const std::vector<uint32_t>& indices() const { return indices_; }
  const std::vector<float>& values() const { return values_; }

  // A view; values are left out when they are all 1.
  RowBlockView view() const {
    return RowBlockView{labels_, std::span<const uint32_t>(offsets_.data(), labels_.size() + 1),
                        std::span<const uint32_t>(indices_.data(), offsets_.back()),
                        all_ones_ ? std::span<const float>()
                                  : std::span<const float>(values_.data(), offsets_.back())};
  }

 private:
  std::vector<float> labels_;
  std::vector<uint32_t> offsets_;
  std::vector<uint32_t> indices_;
  std::vector<float> values_;
  bool all_ones_ = true;
};

}  // namespace virga
