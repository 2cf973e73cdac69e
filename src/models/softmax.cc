// Softmax (multinomial logistic) regression over K classes: a key's row
// holds one weight per class, z_c = b_c + sum_j w_jc x_j, P(c) = softmax(z)_c,
// loss -log P(label). Labels are the class numbers 0..K-1 (LIBSVM and CSV
// multiclass files); the job checks them against the dataset's label range
// before it starts, and the kernel clamps a label outside [0, K) into it
// rather than read out of bounds.
#include <algorithm>
#include <cmath>

#include "models/linear_model.h"

namespace virga {
namespace {

constexpr uint32_t kMaxClasses = 1024;  // TableConfig's width cap

// z[c] for one row's entries [begin, end) (positions relative to the batch's
// first entry).
template <bool kBinary>
void Scores(const float* w, uint32_t k, const uint32_t* slot, const float* val, size_t begin,
            size_t end, const float* bias, float* z) {
  std::copy_n(bias, k, z);
  for (size_t e = begin; e < end; ++e) {
    const float* row = w + static_cast<size_t>(slot[e]) * k;
    const float x = kBinary ? 1.0f : val[e];
    for (uint32_t c = 0; c < k; ++c) z[c] += row[c] * x;
  }
}

// z -> probabilities in place; returns log(sum exp(z - max)) + max.
inline float SoftmaxInPlace(float* z, uint32_t k) {
  const float mx = *std::max_element(z, z + k);
  float total = 0;
  for (uint32_t c = 0; c < k; ++c) total += (z[c] = std::exp(z[c] - mx));
  const float inv = 1.0f / total;
  for (uint32_t c = 0; c < k; ++c) z[c] *= inv;
  return std::log(total) + mx;
}

inline uint32_t ClassOf(float label, uint32_t k) {
  const float c = std::clamp(label, 0.0f, static_cast<float>(k - 1));
  return static_cast<uint32_t>(c);
}

class Softmax final : public Model {
 public:
  explicit Softmax(uint32_t classes) : k_(classes) {}
  ModelKind kind() const override { return ModelKind::kSoftmax; }
  ModelTask task() const override { return ModelTask::kMulticlass; }
  uint32_t width() const override { return k_; }
  uint32_t outputs() const override { return k_; }

  double Gradient(const SlotBatch& b, std::span<const float> weights,
                  std::span<float> grads) const override {
    return b.rows.binary() ? GradientLoop<true>(b, weights.data(), grads.data())
                           : GradientLoop<false>(b, weights.data(), grads.data());
  }
  void Predict(const SlotBatch& b, std::span<const float> weights,
               std::span<float> out) const override {
    if (b.rows.binary()) {
      PredictLoop<true>(b, weights.data(), out.data());
    } else {
      PredictLoop<false>(b, weights.data(), out.data());
    }
  }

 private:
  template <bool kBinary>
  double GradientLoop(const SlotBatch& b, const float* w, float* g) const {
    const RowBlockView& r = b.rows;
    const size_t n = r.rows();
    if (n == 0) return 0;
    const uint32_t base = r.offsets[0];
    const float* val = kBinary ? nullptr : r.values.data() + base;
    const float* bias = w + static_cast<size_t>(b.bias_slot) * k_;
    float* bias_grad = g + static_cast<size_t>(b.bias_slot) * k_;
    const float inv_n = 1.0f / static_cast<float>(n);
    float p[kMaxClasses];
    double loss = 0;
    for (size_t row = 0; row < n; ++row) {
      const size_t begin = r.offsets[row] - base, end = r.offsets[row + 1] - base;
      Scores<kBinary>(w, k_, b.slot.data(), val, begin, end, bias, p);
      const uint32_t y = ClassOf(r.labels[row], k_);
      const float z_y = p[y];
      loss += SoftmaxInPlace(p, k_) - z_y;
      p[y] -= 1.0f;  // d loss / d z_c = p_c - [c == y]
      for (uint32_t c = 0; c < k_; ++c) p[c] *= inv_n;
      for (uint32_t c = 0; c < k_; ++c) bias_grad[c] += p[c];
      for (size_t e = begin; e < end; ++e) {
        float* gr = g + static_cast<size_t>(b.slot[e]) * k_;
        const float x = kBinary ? 1.0f : val[e];
        for (uint32_t c = 0; c < k_; ++c) gr[c] += p[c] * x;
      }
    }
    return loss;
  }

  template <bool kBinary>
  void PredictLoop(const SlotBatch& b, const float* w, float* out) const {
    const RowBlockView& r = b.rows;
    if (r.rows() == 0) return;
    const uint32_t base = r.offsets[0];
    const float* val = kBinary ? nullptr : r.values.data() + base;
    const float* bias = w + static_cast<size_t>(b.bias_slot) * k_;
    for (size_t row = 0; row < r.rows(); ++row) {
      float* z = out + row * k_;
      Scores<kBinary>(w, k_, b.slot.data(), val, r.offsets[row] - base, r.offsets[row + 1] - base,
                      bias, z);
      SoftmaxInPlace(z, k_);
    }
  }

  const uint32_t k_;
};

Result<uint32_t> Width(const ModelShape& shape) {
  if (shape.classes < 2 || shape.classes > kMaxClasses) {
    return Status::InvalidArgument("classes: softmax needs 2.." + std::to_string(kMaxClasses) +
                                   " classes, got " + std::to_string(shape.classes));
  }
  return shape.classes;
}

std::unique_ptr<Model> Make(uint32_t width) {
  if (width < 2 || width > kMaxClasses) return nullptr;
  return std::make_unique<Softmax>(width);
}

OptimizerConfig DefaultOptimizer() {
  OptimizerConfig c;
  c.kind = OptimizerKind::kAdagrad;
  c.learning_rate = 0.5f;
  return c;
}

}  // namespace

extern const ModelInfo kSoftmaxInfo{
    .kind = ModelKind::kSoftmax,
    .name = "softmax",
    .aliases = "multinomial",
    .task = ModelTask::kMulticlass,
    .summary = "softmax regression (class labels 0..K-1)",
    .width = &Width,
    .make = &Make,
    .optimizer = DefaultOptimizer(),
    .own_optimizer = true,
    .minibatch = 20,
    .epochs = 50,
    .channel_ok = false,
};

}  // namespace virga
