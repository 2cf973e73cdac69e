// Field-aware factorization machine (Juan et al. 2016), for binary labels:
//
//   m = w0 + sum_j w_j x_j + sum_{p<q} <v_{p, f(q)}, v_{q, f(p)}> x_p x_q
//
// where each feature keeps one rank-k factor vector per field and f(p) is the
// field of the row's p-th entry: its position, as the Criteo format writes
// every row (13 integer fields, then 26 categorical ones, always 39 entries;
// docs/formats.md). A row longer than kFields gives its extra entries the
// last field. Rows of width 1 + kFields * rank: [w_j, v_{j,0}, ..., v_{j,38}].
// O(n^2 k) per row of n entries (741 pairs for a Criteo row).
#include <algorithm>

#include "models/linear_model.h"

namespace virga {
namespace {

constexpr uint32_t kFields = 39;  // Criteo's fields
constexpr uint32_t kDefaultRank = 4;
constexpr uint32_t kMaxWidth = 1024;

class FieldAwareFm final : public Model {
 public:
  explicit FieldAwareFm(uint32_t width) : width_(width), k_((width - 1) / kFields) {}
  ModelKind kind() const override { return ModelKind::kFieldAwareFm; }
  ModelTask task() const override { return ModelTask::kBinary; }
  uint32_t width() const override { return width_; }

  double Gradient(const SlotBatch& b, std::span<const float> weights,
                  std::span<float> grads) const override {
    return b.rows.binary() ? Loop<true, true>(b, weights.data(), grads.data(), nullptr)
                           : Loop<false, true>(b, weights.data(), grads.data(), nullptr);
  }
  void Predict(const SlotBatch& b, std::span<const float> weights,
               std::span<float> out) const override {
    if (b.rows.binary()) {
      Loop<true, false>(b, weights.data(), nullptr, out.data());
    } else {
      Loop<false, false>(b, weights.data(), nullptr, out.data());
    }
  }

 private:
  // The factors of the feature at `slot` for field `f`.
  const float* V(const float* w, uint32_t slot, uint32_t f) const {
    return w + static_cast<size_t>(slot) * width_ + 1 + static_cast<size_t>(f) * k_;
  }
  float* G(float* g, uint32_t slot, uint32_t f) const {
    return g + static_cast<size_t>(slot) * width_ + 1 + static_cast<size_t>(f) * k_;
  }

  // kGrad: adds gradients to g and returns the summed loss; else writes
  // P(positive) per row to out.
  template <bool kBinary, bool kGrad>
  double Loop(const SlotBatch& b, const float* w, float* g, float* out) const {
    const RowBlockView& r = b.rows;
    const size_t n = r.rows();
    if (n == 0) return 0;
    const uint32_t base = r.offsets[0];
    const uint32_t* slot = b.slot.data();
    const float* val = kBinary ? nullptr : r.values.data() + base;
    const size_t bias_at = static_cast<size_t>(b.bias_slot) * width_;
    const float inv_n = 1.0f / static_cast<float>(n);
    double loss = 0;
    for (size_t row = 0; row < n; ++row) {
      const size_t begin = r.offsets[row] - base, end = r.offsets[row + 1] - base;
      auto x = [&](size_t e) { return kBinary ? 1.0f : val[e]; };
      auto field = [&](size_t e) { return std::min<uint32_t>(e - begin, kFields - 1); };
      float m = w[bias_at];
      for (size_t p = begin; p < end; ++p) {
        m += w[static_cast<size_t>(slot[p]) * width_] * x(p);
        for (size_t q = p + 1; q < end; ++q) {
          const float* a = V(w, slot[p], field(q));
          const float* c = V(w, slot[q], field(p));
          float dot = 0;
          for (uint32_t f = 0; f < k_; ++f) dot += a[f] * c[f];
          m += dot * x(p) * x(q);
        }
      }
      if constexpr (!kGrad) {
        out[row] = StableSigmoid(m);
        continue;
      }
      const LossAndSlope ls = LogisticLossAndSlope(m, linear_internal::Label(r.labels[row]));
      loss += ls.loss;
      const float d = ls.slope * inv_n;
      if (d == 0) continue;
      g[bias_at] += d;
      for (size_t p = begin; p < end; ++p) {
        g[static_cast<size_t>(slot[p]) * width_] += d * x(p);
        for (size_t q = p + 1; q < end; ++q) {
          const float s = d * x(p) * x(q);
          const float* a = V(w, slot[p], field(q));
          const float* c = V(w, slot[q], field(p));
          float* ga = G(g, slot[p], field(q));
          float* gc = G(g, slot[q], field(p));
          for (uint32_t f = 0; f < k_; ++f) {
            ga[f] += s * c[f];
            gc[f] += s * a[f];
          }
        }
      }
    }
    return loss;
  }

  const uint32_t width_, k_;
};

Result<uint32_t> Width(const ModelShape& shape) {
  const uint32_t rank = shape.rank == 0 ? kDefaultRank : shape.rank;
  if (1 + uint64_t{kFields} * rank > kMaxWidth) {
    return Status::InvalidArgument("rank: ffm keeps " + std::to_string(kFields) +
                                   " factor vectors per feature, so rank must be 1.." +
                                   std::to_string((kMaxWidth - 1) / kFields) + ", got " +
                                   std::to_string(rank));
  }
  return 1 + kFields * rank;
}

std::unique_ptr<Model> Make(uint32_t width) {
  if (width < 1 + kFields || width > kMaxWidth || (width - 1) % kFields != 0) return nullptr;
  return std::make_unique<FieldAwareFm>(width);
}

OptimizerConfig DefaultOptimizer() {
  OptimizerConfig c;
  c.kind = OptimizerKind::kFtrl;
  c.learning_rate = 0.1f;
  return c;
}

}  // namespace

extern const ModelInfo kFieldAwareFmInfo{
    .kind = ModelKind::kFieldAwareFm,
    .name = "ffm",
    .aliases = "field_aware_fm",
    .task = ModelTask::kBinary,
    .summary = "field-aware factorization machine (binary labels; Criteo rows: field = position)",
    .width = &Width,
    .make = &Make,
    .init = InitKind::kNormal,
    .init_scale = 0.01f,
    .optimizer = DefaultOptimizer(),
    .own_optimizer = true,
    .epochs = 3,
    .channel_ok = false,
};

}  // namespace virga
