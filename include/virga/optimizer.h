// Server-side optimizers, applied per coordinate with per-coordinate state.
// Each kind's exact update rule, with formulas, is written in
// docs/optimizers.md; the code in src/ps/optimizer_kernels.h follows it.
//
// The gradient a worker sends is first clipped to [-clip, clip] (when clip >
// 0); every kind but FTRL then adds the regularizer's (sub)gradient,
// g += l2 * w + l1 * sign(w) with sign(0) = 0, before its update. FTRL keeps
// l1 and l2 in its closed-form weight instead.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga {

enum class OptimizerKind : uint8_t { kSgd, kMomentum, kNesterov, kAdagrad, kAdam, kFtrl };
enum class LrSchedule : uint8_t {
  kConstant,     // lr
  kInverseSqrt,  // lr / sqrt(1 + t / decay_steps)
  kExponential,  // lr * decay_rate ^ (t / decay_steps)
  kStep,         // lr * decay_rate ^ floor(t / decay_steps)
};

// "sgd", "momentum", "nesterov", "adagrad", "adam", "ftrl". Unknown names are
// InvalidArgument naming the name.
Result<OptimizerKind> ParseOptimizerName(std::string_view name);
const char* OptimizerName(OptimizerKind kind);  // "unknown" for a value outside the enum
Result<LrSchedule> ParseLrScheduleName(std::string_view name);  // constant, inverse_sqrt, exponential, step
const char* LrScheduleName(LrSchedule schedule);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kAdagrad;
  float learning_rate = 0.1f;   // > 0. FTRL: alpha
  float l1 = 0.0f;              // >= 0. L1 strength (proximal for FTRL, subgradient otherwise)
  float l2 = 0.0f;              // >= 0. L2 strength (g + l2 * w; FTRL: in the closed form)
  float momentum = 0.9f;        // [0, 1). momentum, nesterov
  float beta1 = 0.9f;           // [0, 1). adam
  float beta2 = 0.999f;         // [0, 1). adam
  float epsilon = 1e-8f;        // > 0. adam, adagrad denominators
  float initial_accumulator = 0.0f;  // >= 0. adagrad / ftrl n starts here
  float ftrl_beta = 1.0f;       // > 0. ftrl (keeps its denominator positive)
  float clip = 0.0f;            // >= 0. clip each gradient coordinate to [-clip, clip]; 0 = off
  LrSchedule schedule = LrSchedule::kConstant;
  float decay_rate = 0.5f;      // (0, 1]. exponential, step
  uint64_t decay_steps = 1000;  // >= 1. in table versions (applied pushes)

  // InvalidArgument naming the field for out-of-range or non-finite values,
  // e.g. "optimizer.learning_rate: must be > 0, got -1". Every field is
  // checked whatever the kind, so a config stays valid when the kind changes.
  Status Validate() const;
  bool operator==(const OptimizerConfig&) const = default;
};

// Floats of optimizer state kept per coordinate: sgd 0, momentum 1 (v),
// nesterov 1 (v), adagrad 1 (n), adam 3 (m, v, step), ftrl 2 (z, n).
int OptimizerStateWidth(OptimizerKind kind);

// Writes the initial state of `state.size() / StateWidth` coordinates: zeros,
// except adagrad n and ftrl n, which start at initial_accumulator.
void InitOptimizerState(const OptimizerConfig& config, std::span<float> state);

// Learning rate after `t` applied pushes under the config's schedule.
float ScheduledLearningRate(const OptimizerConfig& config, uint64_t t);

// Applies gradient coordinates g[i] to weights w[i] with state
// state[i * StateWidth .. +StateWidth), for i < g.size(). `lr` is the
// scheduled rate. The switch on kind is outside the loop.
// REQUIRES: config.Validate().ok(), w.size() >= g.size(),
//           state.size() >= g.size() * OptimizerStateWidth(config.kind).
void ApplyGradient(const OptimizerConfig& config, float lr, std::span<float> w,
                   std::span<float> state, std::span<const float> g);

}  // namespace virga
