// The kernel shared by the linear models (logistic regression, linear SVM):
// margin m = w[bias] + sum_i w[slot_i] * x_i per row, and a loss of y * m
// with y = +1 for label > 0, else -1. The loops over rows and entries are
// templates over the loss functor and over binary vs real-valued rows, so
// each model compiles its own loop with no call per row or entry.
//
// A Loss provides:
//   static constexpr ModelKind kKind;
//   // Loss of one row and its derivative d loss / d margin.
//   static LossAndSlope Eval(float margin, float y);
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>

#include "virga/model.h"

namespace virga {

struct LossAndSlope {
  float loss;
  float slope;  // d loss / d margin
};

// 1 / (1 + exp(-m)) without overflow for any m.
inline float StableSigmoid(float m) {
  const float e = std::exp(-std::fabs(m));
  return m >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// The logistic loss log(1 + exp(-y m)) of labels y in {-1, +1}. With z = y m
// and e = exp(-|z|) (never overflows):
//   loss  = log1p(e) + max(-z, 0)
//   slope = -y * sigmoid(-z) = -y * (z >= 0 ? e / (1 + e) : 1 / (1 + e))
inline LossAndSlope LogisticLossAndSlope(float margin, float y) {
  const float z = y * margin;
  const float e = std::exp(-std::fabs(z));
  const float loss = std::log1p(e) + std::max(-z, 0.0f);
  const float p = (z >= 0 ? e : 1.0f) / (1.0f + e);
  return {loss, -y * p};
}

namespace linear_internal {

inline float Label(float label) { return label > 0 ? 1.0f : -1.0f; }

// Sums weights over one row's entries [begin, end) (positions relative to
// the batch's first entry).
template <bool kBinary>
inline float Margin(const float* w, const uint32_t* slot, const float* val, size_t begin,
                    size_t end, float bias) {
  float m = bias;
  for (size_t k = begin; k < end; ++k) m += kBinary ? w[slot[k]] : w[slot[k]] * val[k];
  return m;
}

template <class Loss, bool kBinary>
double GradientLoop(const SlotBatch& b, const float* w, float* g) {
  const RowBlockView& r = b.rows;
  const size_t n = r.rows();
  if (n == 0) return 0;
  const uint32_t base = r.offsets[0];
  const uint32_t* slot = b.slot.data();
  const float* val = kBinary ? nullptr : r.values.data() + base;
  const float inv_n = 1.0f / static_cast<float>(n);
  const float bias = w[b.bias_slot];
  double loss = 0;
  float bias_grad = 0;
  for (size_t row = 0; row < n; ++row) {
    const size_t begin = r.offsets[row] - base, end = r.offsets[row + 1] - base;
    const float m = Margin<kBinary>(w, slot, val, begin, end, bias);
    const LossAndSlope ls = Loss::Eval(m, Label(r.labels[row]));
    loss += ls.loss;
    const float d = ls.slope * inv_n;
    if (d == 0) continue;
    bias_grad += d;
    for (size_t k = begin; k < end; ++k) g[slot[k]] += kBinary ? d : d * val[k];
  }
  g[b.bias_slot] += bias_grad;
  return loss;
}

template <bool kBinary>
void PredictLoop(const SlotBatch& b, const float* w, float* out) {
  const RowBlockView& r = b.rows;
  if (r.rows() == 0) return;
  const uint32_t base = r.offsets[0];
  const float* val = kBinary ? nullptr : r.values.data() + base;
  for (size_t row = 0; row < r.rows(); ++row) {
    out[row] = StableSigmoid(Margin<kBinary>(w, b.slot.data(), val, r.offsets[row] - base,
                                             r.offsets[row + 1] - base, w[b.bias_slot]));
  }
}

}  // namespace linear_internal

// A linear model with loss `Loss`; width 1.
template <class Loss>
class LinearModel final : public Model {
 public:
  ModelKind kind() const override { return Loss::kKind; }
  ModelTask task() const override { return ModelTask::kBinary; }
  uint32_t width() const override { return 1; }

  double Gradient(const SlotBatch& batch, std::span<const float> weights,
                  std::span<float> grads) const override {
    return batch.rows.binary()
               ? linear_internal::GradientLoop<Loss, true>(batch, weights.data(), grads.data())
               : linear_internal::GradientLoop<Loss, false>(batch, weights.data(), grads.data());
  }

  void Predict(const SlotBatch& batch, std::span<const float> weights,
               std::span<float> out) const override {
    if (batch.rows.binary()) {
      linear_internal::PredictLoop<true>(batch, weights.data(), out.data());
    } else {
      linear_internal::PredictLoop<false>(batch, weights.data(), out.data());
    }
  }
};

std::unique_ptr<Model> MakeLogisticRegression();
std::unique_ptr<Model> MakeLinearSvm();

namespace linear_internal {
// ModelInfo::width of the linear models: always 1.
inline Result<uint32_t> Width(const ModelShape&) { return 1u; }
// ModelInfo::make: the model for width 1, else null.
template <class Loss>
std::unique_ptr<Model> Make(uint32_t width) {
  return width == 1 ? std::make_unique<LinearModel<Loss>>() : nullptr;
}
}  // namespace linear_internal

}  // namespace virga
