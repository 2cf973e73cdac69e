// The kernel shared by the factorization models (matrix factorization,
// factorization machines): Rendle's second-order factorization machine
//
//   m = w[bias] + sum_j w_j x_j + sum_{i<j} <v_i, v_j> x_i x_j
//     = w[bias] + sum_j w_j x_j + 1/2 sum_f ((sum_j v_jf x_j)^2 - sum_j v_jf^2 x_j^2)
//
// computed in O(k n) per row of n entries. A key's row of width 1 + k holds
// [w_j, v_j1 .. v_jk]; the bias key's row holds the global bias in column 0
// (its factors are unused and get no gradient). Biased matrix factorization
// is the case of rows with one user and one item feature:
// m = mu + b_u + b_i + <p_u, q_i>.
//
// A Loss provides (as in linear_model.h):
//   static constexpr ModelKind kKind;  static constexpr ModelTask kTask;
//   static LossAndSlope Eval(float margin, float label);
//   static float Output(float margin);   // what Predict writes
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>

#include "models/linear_model.h"
#include "virga/model.h"

namespace virga {
namespace fm_internal {

// Widths 2..kMaxWidth: rank 1..kMaxRank (TableConfig caps widths at 1024).
inline constexpr uint32_t kMaxWidth = 1024;
inline constexpr uint32_t kMaxRank = kMaxWidth - 1;

// The margin of the row whose entries are [begin, end) (positions relative to
// the batch's first entry); leaves sum_j v_jf x_j in sum[0 .. k).
template <bool kBinary>
inline float Margin(const float* w, uint32_t width, const uint32_t* slot, const float* val,
                    size_t begin, size_t end, float bias, float* sum) {
  const uint32_t k = width - 1;
  std::fill_n(sum, k, 0.0f);
  float lin = bias, sq = 0;
  for (size_t e = begin; e < end; ++e) {
    const float* row = w + static_cast<size_t>(slot[e]) * width;
    const float x = kBinary ? 1.0f : val[e];
    lin += row[0] * x;
    for (uint32_t f = 0; f < k; ++f) {
      const float vx = row[1 + f] * x;
      sum[f] += vx;
      sq += vx * vx;
    }
  }
  float pair = 0;
  for (uint32_t f = 0; f < k; ++f) pair += sum[f] * sum[f];
  return lin + 0.5f * (pair - sq);
}

template <class Loss, bool kBinary>
double GradientLoop(const SlotBatch& b, uint32_t width, const float* w, float* g) {
  const RowBlockView& r = b.rows;
  const size_t n = r.rows();
  if (n == 0) return 0;
  const uint32_t k = width - 1;
  const uint32_t base = r.offsets[0];
  const uint32_t* slot = b.slot.data();
  const float* val = kBinary ? nullptr : r.values.data() + base;
  const float inv_n = 1.0f / static_cast<float>(n);
  const float bias = w[static_cast<size_t>(b.bias_slot) * width];
  float sum[kMaxRank];
  double loss = 0;
  float bias_grad = 0;
  for (size_t row = 0; row < n; ++row) {
    const size_t begin = r.offsets[row] - base, end = r.offsets[row + 1] - base;
    const float m = Margin<kBinary>(w, width, slot, val, begin, end, bias, sum);
    const LossAndSlope ls = Loss::Eval(m, r.labels[row]);
    loss += ls.loss;
    const float d = ls.slope * inv_n;
    if (d == 0) continue;
    bias_grad += d;
    for (size_t e = begin; e < end; ++e) {
      const size_t at = static_cast<size_t>(slot[e]) * width;
      const float x = kBinary ? 1.0f : val[e];
      const float dx = d * x;
      g[at] += dx;
      // d m / d v_jf = x_j (sum_f - v_jf x_j)
      for (uint32_t f = 0; f < k; ++f) g[at + 1 + f] += dx * (sum[f] - w[at + 1 + f] * x);
    }
  }
  g[static_cast<size_t>(b.bias_slot) * width] += bias_grad;
  return loss;
}

template <class Loss, bool kBinary>
void PredictLoop(const SlotBatch& b, uint32_t width, const float* w, float* out) {
  const RowBlockView& r = b.rows;
  if (r.rows() == 0) return;
  const uint32_t base = r.offsets[0];
  const float* val = kBinary ? nullptr : r.values.data() + base;
  const float bias = w[static_cast<size_t>(b.bias_slot) * width];
  float sum[kMaxRank];
  for (size_t row = 0; row < r.rows(); ++row) {
    out[row] = Loss::Output(Margin<kBinary>(w, width, b.slot.data(), val, r.offsets[row] - base,
                                            r.offsets[row + 1] - base, bias, sum));
  }
}

}  // namespace fm_internal

// A factorization model with loss `Loss` and rows of `width` = 1 + rank.
template <class Loss>
class FactorizationModel final : public Model {
 public:
  // REQUIRES: 2 <= width <= fm_internal::kMaxWidth.
  explicit FactorizationModel(uint32_t width) : width_(width) {}

  ModelKind kind() const override { return Loss::kKind; }
  ModelTask task() const override { return Loss::kTask; }
  uint32_t width() const override { return width_; }

  double Gradient(const SlotBatch& batch, std::span<const float> weights,
                  std::span<float> grads) const override {
    return batch.rows.binary()
               ? fm_internal::GradientLoop<Loss, true>(batch, width_, weights.data(), grads.data())
               : fm_internal::GradientLoop<Loss, false>(batch, width_, weights.data(),
                                                        grads.data());
  }

  void Predict(const SlotBatch& batch, std::span<const float> weights,
               std::span<float> out) const override {
    if (batch.rows.binary()) {
      fm_internal::PredictLoop<Loss, true>(batch, width_, weights.data(), out.data());
    } else {
      fm_internal::PredictLoop<Loss, false>(batch, width_, weights.data(), out.data());
    }
  }

  // ModelInfo::width: 1 + rank (rank 0: `default_rank`).
  static Result<uint32_t> Width(const ModelShape& shape, uint32_t default_rank) {
    const uint32_t rank = shape.rank == 0 ? default_rank : shape.rank;
    if (rank > fm_internal::kMaxRank) {
      return Status::InvalidArgument("rank: must be 1.." + std::to_string(fm_internal::kMaxRank) +
                                     ", got " + std::to_string(rank));
    }
    return rank + 1;
  }
  // ModelInfo::make.
  static std::unique_ptr<Model> Make(uint32_t width) {
    if (width < 2 || width > fm_internal::kMaxWidth) return nullptr;
    return std::make_unique<FactorizationModel<Loss>>(width);
  }

 private:
  const uint32_t width_;
};

}  // namespace virga
