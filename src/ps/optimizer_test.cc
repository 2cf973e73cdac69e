// Every optimizer against its update rule written out here independently,
// in doubles, straight from docs/optimizers.md (FTRL in the paper's form,
// not the kernel's rationalised one).
#include "virga/optimizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace virga {
namespace {

constexpr int kCoords = 4;
constexpr int kSteps = 12;

double Sgn(double x) { return (x > 0) - (x < 0); }

// One reference step on one coordinate: w and its state s (doubles).
void RefStep(const OptimizerConfig& c, double lr, double& w, double* s, double g) {
  if (c.clip > 0) g = std::clamp(g, -double{c.clip}, double{c.clip});
  if (c.kind == OptimizerKind::kFtrl) {
    const double sigma = (std::sqrt(s[1] + g * g) - std::sqrt(s[1])) / lr;
    s[0] += g - sigma * w;
    s[1] += g * g;
    w = std::fabs(s[0]) <= c.l1
            ? 0.0
            : -(s[0] - Sgn(s[0]) * c.l1) / ((c.ftrl_beta + std::sqrt(s[1])) / lr + c.l2);
    return;
  }
  g += double{c.l2} * w + double{c.l1} * Sgn(w);
  switch (c.kind) {
    case OptimizerKind::kSgd: w -= lr * g; break;
    case OptimizerKind::kMomentum:
      s[0] = c.momentum * s[0] + g;
      w -= lr * s[0];
      break;
    case OptimizerKind::kNesterov:
      s[0] = c.momentum * s[0] + g;
      w -= lr * (g + c.momentum * s[0]);
      break;
    case OptimizerKind::kAdagrad:
      s[0] += g * g;
      w -= lr * g / (std::sqrt(s[0]) + c.epsilon);
      break;
    case OptimizerKind::kAdam: {
      const double t = s[2] + 1;
      s[0] = c.beta1 * s[0] + (1 - c.beta1) * g;
      s[1] = c.beta2 * s[1] + (1 - c.beta2) * g * g;
      const double m_hat = s[0] / (1 - std::pow(double{c.beta1}, t));
      const double v_hat = s[1] / (1 - std::pow(double{c.beta2}, t));
      w -= lr * m_hat / (std::sqrt(v_hat) + c.epsilon);
      s[2] = t;
      break;
    }
    case OptimizerKind::kFtrl: break;
  }
}

// Relative 1e-5. Values that pass near zero by cancellation (FTRL's z sums
// terms of size ~1) carry float rounding of those terms, ~1e-7 per step, so
// below 0.05 the bound is absolute: 5e-7.
void ExpectClose(double actual, double expected, const char* what, int step, int coord) {
  EXPECT_LE(std::fabs(actual - expected), 1e-5 * std::max(std::fabs(expected), 0.05))
      << what << " step " << step << " coord " << coord << ": " << actual << " vs " << expected;
}

// Gradients that vary in size and sign across steps and coordinates.
double Grad(int step, int coord, double scale) {
  return scale * (std::sin(1.7 * step + 0.9 * coord) + 0.3 * (coord - 1.5));
}

// Runs ApplyGradient and the reference side by side for kSteps with a
// varying lr, comparing weights and state after every step.
void CheckAgainstReference(const OptimizerConfig& c, double grad_scale = 1.0) {
  ASSERT_TRUE(c.Validate().ok()) << c.Validate().ToString();
  const int sw = OptimizerStateWidth(c.kind);
  std::vector<float> w = {0.5f, -0.3f, 0.2f, -0.7f};
  std::vector<float> state(kCoords * sw);
  InitOptimizerState(c, state);
  std::vector<double> rw(w.begin(), w.end());
  std::vector<double> rs(state.begin(), state.end());
  for (int step = 0; step < kSteps; ++step) {
    const float lr = c.learning_rate * (1.0f + 0.1f * static_cast<float>(step));
    std::vector<float> g(kCoords);
    for (int i = 0; i < kCoords; ++i) g[i] = static_cast<float>(Grad(step, i, grad_scale));
    ApplyGradient(c, lr, w, state, g);
    for (int i = 0; i < kCoords; ++i) {
      RefStep(c, lr, rw[i], rs.data() + i * sw, g[i]);
      ExpectClose(w[i], rw[i], "weight", step, i);
      for (int k = 0; k < sw; ++k) ExpectClose(state[i * sw + k], rs[i * sw + k], "state", step, i);
    }
  }
}

OptimizerConfig Config(OptimizerKind kind, float lr = 0.1f) {
  OptimizerConfig c;
  c.kind = kind;
  c.learning_rate = lr;
  return c;
}

constexpr OptimizerKind kAllKinds[] = {OptimizerKind::kSgd,     OptimizerKind::kMomentum,
                                       OptimizerKind::kNesterov, OptimizerKind::kAdagrad,
                                       OptimizerKind::kAdam,    OptimizerKind::kFtrl};

TEST(Optimizer, Sgd) { CheckAgainstReference(Config(OptimizerKind::kSgd)); }
TEST(Optimizer, Momentum) { CheckAgainstReference(Config(OptimizerKind::kMomentum)); }
TEST(Optimizer, Nesterov) { CheckAgainstReference(Config(OptimizerKind::kNesterov)); }
TEST(Optimizer, Adagrad) { CheckAgainstReference(Config(OptimizerKind::kAdagrad)); }
TEST(Optimizer, Adam) { CheckAgainstReference(Config(OptimizerKind::kAdam, 0.01f)); }
TEST(Optimizer, Ftrl) { CheckAgainstReference(Config(OptimizerKind::kFtrl, 0.5f)); }

TEST(Optimizer, AdagradInitialAccumulator) {
  OptimizerConfig c = Config(OptimizerKind::kAdagrad);
  c.initial_accumulator = 0.25f;
  c.epsilon = 1e-3f;
  CheckAgainstReference(c);
}

TEST(Optimizer, AdamHyperParameters) {
  OptimizerConfig c = Config(OptimizerKind::kAdam, 0.05f);
  c.beta1 = 0.5f;
  c.beta2 = 0.9f;
  c.epsilon = 1e-4f;
  CheckAgainstReference(c, 3.0);
}

// The kernel reuses its bias corrections while consecutive coordinates share
// a step count; here the counts within one call go 0, 0, 7, 7, 0, 3, 3, 0,
// so every reuse and every change of count is checked against the reference.
TEST(Optimizer, AdamCoordinatesOfDifferentStepCountsInOneCall) {
  const OptimizerConfig c = Config(OptimizerKind::kAdam, 0.01f);
  const int counts[] = {0, 0, 7, 7, 0, 3, 3, 0};
  constexpr int n = 8;
  std::vector<float> w(n), state(n * 3), g(n);
  std::vector<double> rw(n), rs(n * 3);
  for (int i = 0; i < n; ++i) {
    w[i] = static_cast<float>(0.1 * (i - 3));
    state[i * 3] = 0.02f * static_cast<float>(counts[i]);  // m
    state[i * 3 + 1] = 0.001f * static_cast<float>(counts[i]);  // v
    state[i * 3 + 2] = static_cast<float>(counts[i]);  // t
    g[i] = static_cast<float>(Grad(1, i, 1.0));
    rw[i] = w[i];
    for (int k = 0; k < 3; ++k) rs[i * 3 + k] = state[i * 3 + k];
  }
  ApplyGradient(c, c.learning_rate, w, state, g);
  for (int i = 0; i < n; ++i) {
    RefStep(c, c.learning_rate, rw[i], rs.data() + i * 3, g[i]);
    ExpectClose(w[i], rw[i], "weight", 0, i);
    EXPECT_EQ(state[i * 3 + 2], static_cast<float>(counts[i] + 1)) << "coord " << i;
  }
}

TEST(Optimizer, L1AndL2AllKinds) {
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerName(kind));
    OptimizerConfig c = Config(kind, kind == OptimizerKind::kAdam ? 0.01f : 0.1f);
    c.l2 = 0.3f;
    CheckAgainstReference(c);
    c.l2 = 0.0f;
    c.l1 = 0.05f;
    CheckAgainstReference(c);
    c.l2 = 0.2f;
    CheckAgainstReference(c);
  }
}

TEST(Optimizer, ClippingAllKinds) {
  for (OptimizerKind kind : kAllKinds) {
    SCOPED_TRACE(OptimizerName(kind));
    OptimizerConfig c = Config(kind, kind == OptimizerKind::kAdam ? 0.01f : 0.1f);
    c.clip = 0.5f;
    CheckAgainstReference(c, 4.0);  // most gradients beyond the clip
  }
}

TEST(Optimizer, ClipBoundsTheStep) {
  OptimizerConfig c = Config(OptimizerKind::kSgd, 1.0f);
  c.clip = 0.5f;
  std::vector<float> w = {0.0f, 0.0f, 0.0f}, g = {100.0f, -100.0f, 0.25f};
  ApplyGradient(c, 1.0f, w, {}, g);
  EXPECT_EQ(w[0], -0.5f);
  EXPECT_EQ(w[1], 0.5f);
  EXPECT_EQ(w[2], -0.25f);
}

TEST(Optimizer, FtrlIsExactlySparse) {
  OptimizerConfig c = Config(OptimizerKind::kFtrl, 0.5f);
  c.l1 = 1.0f;
  c.l2 = 0.1f;
  std::vector<float> w(kCoords, 0.0f), state(kCoords * 2, 0.0f);
  std::vector<double> rw(kCoords, 0.0), rs(kCoords * 2, 0.0);
  int zeros = 0, nonzeros = 0;
  for (int step = 0; step < 30; ++step) {
    std::vector<float> g(kCoords);
    // Coordinate 0 always pushes the same way (|z| outgrows l1); others oscillate.
    for (int i = 0; i < kCoords; ++i) {
      g[i] = static_cast<float>(i == 0 ? 0.2 : 0.3 * std::sin(2.1 * step + i));
    }
    ApplyGradient(c, c.learning_rate, w, state, g);
    for (int i = 0; i < kCoords; ++i) {
      RefStep(c, c.learning_rate, rw[i], rs.data() + 2 * i, g[i]);
      if (std::fabs(state[2 * i]) <= c.l1) {
        EXPECT_EQ(w[i], 0.0f) << "step " << step << " coord " << i;
        ++zeros;
      } else {
        EXPECT_NE(w[i], 0.0f);
        ++nonzeros;
      }
      ExpectClose(w[i], rw[i], "weight", step, i);
    }
  }
  EXPECT_GT(zeros, 0);
  EXPECT_GT(nonzeros, 0);
}

TEST(Optimizer, Schedules) {
  OptimizerConfig c;
  c.learning_rate = 0.1f;
  c.decay_steps = 100;
  c.decay_rate = 0.5f;
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 12345), 0.1f);
  c.schedule = LrSchedule::kInverseSqrt;
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 0), 0.1f);
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 300), 0.05f);     // 0.1 / sqrt(4)
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 50), 0.1f / std::sqrt(1.5f));
  c.schedule = LrSchedule::kExponential;
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 100), 0.05f);
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 150), 0.1f * std::pow(0.5f, 1.5f));
  c.schedule = LrSchedule::kStep;
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 99), 0.1f);
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 100), 0.05f);
  EXPECT_FLOAT_EQ(ScheduledLearningRate(c, 250), 0.025f);
}

TEST(Optimizer, StateWidthAndInit) {
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kSgd), 0);
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kMomentum), 1);
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kNesterov), 1);
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kAdagrad), 1);
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kAdam), 3);
  EXPECT_EQ(OptimizerStateWidth(OptimizerKind::kFtrl), 2);
  OptimizerConfig c = Config(OptimizerKind::kFtrl);
  c.initial_accumulator = 0.5f;
  std::vector<float> s(6, 9.0f);
  InitOptimizerState(c, s);
  EXPECT_EQ(s, (std::vector<float>{0, 0.5f, 0, 0.5f, 0, 0.5f}));
  c.kind = OptimizerKind::kAdam;
  InitOptimizerState(c, s);
  EXPECT_EQ(s, std::vector<float>(6, 0.0f));
}

TEST(Optimizer, Names) {
  for (OptimizerKind kind : kAllKinds) {
    auto parsed = ParseOptimizerName(OptimizerName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  for (LrSchedule s : {LrSchedule::kConstant, LrSchedule::kInverseSqrt, LrSchedule::kExponential,
                       LrSchedule::kStep}) {
    auto parsed = ParseLrScheduleName(LrScheduleName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  auto bad = ParseOptimizerName("rmsprop");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("rmsprop"), std::string::npos);
  EXPECT_FALSE(ParseLrScheduleName("cosine").ok());
}

TEST(Optimizer, ValidateNamesTheField) {
  EXPECT_TRUE(OptimizerConfig{}.Validate().ok());
  struct Case {
    const char* field;
    void (*mutate)(OptimizerConfig&);
  };
  const Case cases[] = {
      {"learning_rate", [](OptimizerConfig& c) { c.learning_rate = 0; }},
      {"learning_rate", [](OptimizerConfig& c) { c.learning_rate = NAN; }},
      {"l1", [](OptimizerConfig& c) { c.l1 = -1; }},
      {"l2", [](OptimizerConfig& c) { c.l2 = INFINITY; }},
      {"momentum", [](OptimizerConfig& c) { c.momentum = 1; }},
      {"beta1", [](OptimizerConfig& c) { c.beta1 = -0.1f; }},
      {"beta2", [](OptimizerConfig& c) { c.beta2 = 1.5f; }},
      {"epsilon", [](OptimizerConfig& c) { c.epsilon = 0; }},
      {"initial_accumulator", [](OptimizerConfig& c) { c.initial_accumulator = -1; }},
      {"ftrl_beta", [](OptimizerConfig& c) { c.ftrl_beta = 0; }},
      {"clip", [](OptimizerConfig& c) { c.clip = -2; }},
      {"decay_rate", [](OptimizerConfig& c) { c.decay_rate = 1.5f; }},
      {"decay_steps", [](OptimizerConfig& c) { c.decay_steps = 0; }},
      {"kind", [](OptimizerConfig& c) { c.kind = static_cast<OptimizerKind>(17); }},
      {"schedule", [](OptimizerConfig& c) { c.schedule = static_cast<LrSchedule>(9); }},
  };
  for (const Case& k : cases) {
    OptimizerConfig c;
    k.mutate(c);
    Status s = c.Validate();
    EXPECT_TRUE(s.IsInvalidArgument()) << k.field;
    EXPECT_NE(s.message().find(std::string("optimizer.") + k.field + ":"), std::string::npos)
        << s.ToString();
  }
}

}  // namespace
}  // namespace virga
