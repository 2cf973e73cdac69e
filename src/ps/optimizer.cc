#include "virga/optimizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <string>
#include <type_traits>

#include "ps/optimizer_kernels.h"

namespace virga {

namespace {

constexpr const char* kOptimizerNames[] = {"sgd", "momentum", "nesterov", "adagrad", "adam", "ftrl"};
constexpr const char* kScheduleNames[] = {"constant", "inverse_sqrt", "exponential", "step"};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Checks lo <(=) v <(=) hi and finiteness; the message names the field.
Status CheckRange(const char* field, float v, double lo, bool lo_open, double hi, bool hi_open) {
  const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (ok) return Status::OK();
  std::string range = std::string(lo_open ? "(" : "[") + Num(lo) + ", " +
                      (std::isinf(hi) ? std::string("inf") : Num(hi)) + (hi_open ? ")" : "]");
  return Status::InvalidArgument(std::string("optimizer.") + field + ": must be in " + range +
                                 ", got " + Num(v));
}

constexpr double kInf = HUGE_VAL;

}  // namespace

Result<OptimizerKind> ParseOptimizerName(std::string_view name) {
  for (size_t i = 0; i < std::size(kOptimizerNames); ++i) {
    if (name == kOptimizerNames[i]) return static_cast<OptimizerKind>(i);
  }
  return Status::InvalidArgument("unknown optimizer '" + std::string(name) +
                                 "' (sgd, momentum, nesterov, adagrad, adam, ftrl)");
}

const char* OptimizerName(OptimizerKind kind) {
  const auto i = static_cast<size_t>(kind);
  return i < std::size(kOptimizerNames) ? kOptimizerNames[i] : "unknown";
}

Result<LrSchedule> ParseLrScheduleName(std::string_view name) {
  for (size_t i = 0; i < std::size(kScheduleNames); ++i) {
    if (name == kScheduleNames[i]) return static_cast<LrSchedule>(i);
  }
  return Status::InvalidArgument("unknown learning-rate schedule '" + std::string(name) +
                                 "' (constant, inverse_sqrt, exponential, step)");
}

const char* LrScheduleName(LrSchedule schedule) {
  const auto i = static_cast<size_t>(schedule);
  return i < std::size(kScheduleNames) ? kScheduleNames[i] : "unknown";
}

Status OptimizerConfig::Validate() const {
  if (static_cast<size_t>(kind) >= std::size(kOptimizerNames)) {
    return Status::InvalidArgument("optimizer.kind: unknown value " +
                                   std::to_string(static_cast<int>(kind)));
  }
  if (static_cast<size_t>(schedule) >= std::size(kScheduleNames)) {
    return Status::InvalidArgument("optimizer.schedule: unknown value " +
                                   std::to_string(static_cast<int>(schedule)));
  }
  VIRGA_RETURN_IF_ERROR(CheckRange("learning_rate", learning_rate, 0, true, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("l1", l1, 0, false, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("l2", l2, 0, false, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("momentum", momentum, 0, false, 1, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("beta1", beta1, 0, false, 1, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("beta2", beta2, 0, false, 1, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("epsilon", epsilon, 0, true, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("initial_accumulator", initial_accumulator, 0, false, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("ftrl_beta", ftrl_beta, 0, true, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("clip", clip, 0, false, kInf, true));
  VIRGA_RETURN_IF_ERROR(CheckRange("decay_rate", decay_rate, 0, true, 1, false));
  if (decay_steps == 0) return Status::InvalidArgument("optimizer.decay_steps: must be >= 1, got 0");
  return Status::OK();
}

int OptimizerStateWidth(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return 0;
    case OptimizerKind::kMomentum: return 1;
    case OptimizerKind::kNesterov: return 1;
    case OptimizerKind::kAdagrad: return 1;
    case OptimizerKind::kAdam: return 3;
    case OptimizerKind::kFtrl: return 2;
  }
  return 0;
}

void InitOptimizerState(const OptimizerConfig& config, std::span<float> state) {
  std::fill(state.begin(), state.end(), 0.0f);
  if (config.initial_accumulator == 0.0f) return;
  const int sw = OptimizerStateWidth(config.kind);
  int n_index = -1;  // which state float is the accumulator n
  if (config.kind == OptimizerKind::kAdagrad) n_index = 0;
  if (config.kind == OptimizerKind::kFtrl) n_index = 1;
  if (n_index < 0) return;
  for (size_t i = static_cast<size_t>(n_index); i < state.size(); i += static_cast<size_t>(sw)) {
    state[i] = config.initial_accumulator;
  }
}

float ScheduledLearningRate(const OptimizerConfig& config, uint64_t t) {
  const double lr = config.learning_rate;
  const double steps = static_cast<double>(config.decay_steps);
  switch (config.schedule) {
    case LrSchedule::kConstant: return config.learning_rate;
    case LrSchedule::kInverseSqrt:
      return static_cast<float>(lr / std::sqrt(1.0 + static_cast<double>(t) / steps));
    case LrSchedule::kExponential:
      return static_cast<float>(lr * std::pow(config.decay_rate, static_cast<double>(t) / steps));
    case LrSchedule::kStep:
      return static_cast<float>(
          lr * std::pow(config.decay_rate, static_cast<double>(t / config.decay_steps)));
  }
  return config.learning_rate;
}

void ApplyGradient(const OptimizerConfig& config, float lr, std::span<float> w,
                   std::span<float> state, std::span<const float> g) {
  assert(w.size() >= g.size());
  assert(state.size() >= g.size() * static_cast<size_t>(OptimizerStateWidth(config.kind)));
  optimizer_internal::WithKernel(config, lr, [&](const auto& kernel) {
    constexpr int kSw = std::remove_cvref_t<decltype(kernel)>::kStateWidth;
    for (size_t i = 0; i < g.size(); ++i) kernel(&w[i], state.data() + i * kSw, g[i]);
  });
}

}  // namespace virga
