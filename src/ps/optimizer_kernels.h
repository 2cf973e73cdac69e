// Per-coordinate optimizer kernels, one struct per kind, and the dispatch
// that picks one once per call. Tables template their push loop over the
// kernel (VW's foreach_feature pattern), so the inner loop is a direct call
// with no switch or virtual call per key or coordinate.
//
// A kernel is `void operator()(float* w, float* s, float g) const` updating one
// weight *w with its state s[0 .. kStateWidth) from the raw gradient g.
// The formulas are those of docs/optimizers.md; keep the two in step.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include "virga/optimizer.h"

namespace virga::optimizer_internal {

inline float Sign(float x) { return static_cast<float>((x > 0.0f) - (x < 0.0f)); }

// Clipping by value, then the regularizer's (sub)gradient (all kinds but
// FTRL). kPlain is the common case of neither: the kernels then use g as is,
// saving a third of the instructions of a width-1 adagrad update.
template <bool kPlain>
struct GradPrep {
  float clip = std::numeric_limits<float>::infinity();  // +inf when clipping is off
  float l1 = 0.0f, l2 = 0.0f;

  explicit GradPrep(const OptimizerConfig& c)
      : clip(c.clip > 0.0f ? c.clip : std::numeric_limits<float>::infinity()), l1(c.l1), l2(c.l2) {}
  float Clip(float g) const {
    if constexpr (kPlain) return g;
    return std::clamp(g, -clip, clip);
  }
  float operator()(float g, float w) const {
    if constexpr (kPlain) return g;
    return Clip(g) + l2 * w + l1 * Sign(w);
  }
};

template <bool kPlain>
struct SgdKernel {
  static constexpr int kStateWidth = 0;
  GradPrep<kPlain> prep;
  float lr;
  void operator()(float* w, float* /*s*/, float g) const { *w -= lr * prep(g, *w); }
};

// Heavy ball: v = mu * v + g; w -= lr * v.
template <bool kPlain>
struct MomentumKernel {
  static constexpr int kStateWidth = 1;
  GradPrep<kPlain> prep;
  float lr, mu;
  void operator()(float* w, float* s, float g) const {
    g = prep(g, *w);
    s[0] = mu * s[0] + g;
    *w -= lr * s[0];
  }
};

// Nesterov (Sutskever form): v = mu * v + g; w -= lr * (g + mu * v).
template <bool kPlain>
struct NesterovKernel {
  static constexpr int kStateWidth = 1;
  GradPrep<kPlain> prep;
  float lr, mu;
  void operator()(float* w, float* s, float g) const {
    g = prep(g, *w);
    s[0] = mu * s[0] + g;
    *w -= lr * (g + mu * s[0]);
  }
};

// n += g^2; w -= lr * g / (sqrt(n) + eps).
template <bool kPlain>
struct AdagradKernel {
  static constexpr int kStateWidth = 1;
  GradPrep<kPlain> prep;
  float lr, eps;
  void operator()(float* w, float* s, float g) const {
    g = prep(g, *w);
    s[0] += g * g;
    *w -= lr * g / (std::sqrt(s[0]) + eps);
  }
};

// Per-coordinate step count t (s[2]) for the bias correction, so a
// coordinate seen rarely is corrected for its own number of updates. The
// count is a float: exact to 2^24 updates, after which it stops growing and
// beta^t has long been 0 (correction factor 1).
//
// The two powers cost more than the rest of the update together. The
// coordinates of a row share their count (a push updates whole rows), so the
// kernel keeps the corrections of the last count it saw and a row of width k
// pays for them once, not k times; the results are bit-identical. A kernel
// object therefore belongs to one call on one thread (as WithKernel makes it).
template <bool kPlain>
struct AdamKernel {
  static constexpr int kStateWidth = 3;
  GradPrep<kPlain> prep;
  float lr, b1, b2, eps;
  mutable float last_t = 0.0f;           // 0: nothing cached (a count is >= 1)
  mutable float d1 = 1.0f, d2 = 1.0f;  // 1 - b1^last_t, 1 - b2^last_t
  void operator()(float* w, float* s, float g) const {
    g = prep(g, *w);
    const float t = s[2] + 1.0f;
    s[2] = t;
    s[0] = b1 * s[0] + (1.0f - b1) * g;
    s[1] = b2 * s[1] + (1.0f - b2) * g * g;
    if (t != last_t) {
      last_t = t;
      d1 = 1.0f - std::pow(b1, t);
      d2 = 1.0f - std::pow(b2, t);
    }
    const float m_hat = s[0] / d1;
    const float v_hat = s[1] / d2;
    *w -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
};

// FTRL-Proximal (McMahan et al. 2013, Algorithm 1), state (z, n):
//   sigma = (sqrt(n + g^2) - sqrt(n)) / alpha      [computed as g^2 / (sqrt(n') + sqrt(n)) / alpha]
//   z += g - sigma * w;  n += g^2
//   w = 0 if |z| <= l1, else -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)
template <bool kPlain>
struct FtrlKernel {
  static constexpr int kStateWidth = 2;
  GradPrep<kPlain> prep;  // clip only: l1 and l2 live in the closed form
  float alpha, beta, l1, l2;
  void operator()(float* w, float* s, float g) const {
    g = prep.Clip(g);
    const float g2 = g * g;
    const float sqrt_old = std::sqrt(s[1]);
    const float n = s[1] + g2;
    const float sqrt_new = std::sqrt(n);
    // The rationalised difference avoids cancellation when g^2 << n; FLT_MIN
    // keeps 0/0 away when n and g are both 0 (sigma is then 0). One division
    // here and one in the weight (the textbook form has four: a worker's
    // local steps spend a fifth of their time in this kernel).
    const float sigma = g2 / ((sqrt_new + sqrt_old) * alpha + FLT_MIN);
    const float z = s[0] + g - sigma * *w;
    s[0] = z;
    s[1] = n;
    *w = Weight(z, sqrt_new);
  }
  // The weight its state (z, n) determines: what a replica's delta of z and n
  // leaves behind once added (src/ps/replica.h).
  void Settle(float* w, const float* s) const { *w = Weight(s[0], std::sqrt(s[1])); }
  // -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2), with one division.
  float Weight(float z, float sqrt_n) const {
    return std::fabs(z) <= l1 ? 0.0f : -(z - Sign(z) * l1) * alpha / (beta + sqrt_n + l2 * alpha);
  }
};

// Kernels whose weight is a function of their state (Settle): replicas carry
// the state only.
template <typename Kernel>
constexpr bool kWeightFromState = requires(const Kernel& k, float* w, const float* s) {
  k.Settle(w, s);
};

template <bool kPlain, typename Fn>
void WithKernelOf(const OptimizerConfig& c, float lr, Fn&& fn) {
  const GradPrep<kPlain> prep(c);
  switch (c.kind) {
    case OptimizerKind::kSgd: return fn(SgdKernel<kPlain>{prep, lr});
    case OptimizerKind::kMomentum: return fn(MomentumKernel<kPlain>{prep, lr, c.momentum});
    case OptimizerKind::kNesterov: return fn(NesterovKernel<kPlain>{prep, lr, c.momentum});
    case OptimizerKind::kAdagrad: return fn(AdagradKernel<kPlain>{prep, lr, c.epsilon});
    case OptimizerKind::kAdam:
      return fn(AdamKernel<kPlain>{prep, lr, c.beta1, c.beta2, c.epsilon});
    case OptimizerKind::kFtrl: return fn(FtrlKernel<kPlain>{prep, lr, c.ftrl_beta, c.l1, c.l2});
  }
}

// Calls fn(kernel) with the kernel of config.kind at rate lr: the one switch
// of a call. Kernels without clipping or regularization are separate types.
template <typename Fn>
void WithKernel(const OptimizerConfig& c, float lr, Fn&& fn) {
  const bool plain_ftrl = c.kind == OptimizerKind::kFtrl && c.clip == 0.0f;
  if (plain_ftrl || (c.clip == 0.0f && c.l1 == 0.0f && c.l2 == 0.0f)) {
    return WithKernelOf<true>(c, lr, fn);
  }
  return WithKernelOf<false>(c, lr, fn);
}

// One row laid out as [width weights | width * kStateWidth state]: applies
// g[0 .. width) to it.
template <typename Kernel>
inline void ApplyRow(const Kernel& k, float* row, const float* g, uint32_t width) {
  if (width == 1) return k(row, row + 1, g[0]);  // the common linear model: no loop
  float* state = row + width;
  for (uint32_t i = 0; i < width; ++i) k(row + i, state + i * Kernel::kStateWidth, g[i]);
}

}  // namespace virga::optimizer_internal
