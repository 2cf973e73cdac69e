#include "virga/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace virga {
namespace {

// Independent references: O(n^2) pair counting and the textbook formulas.
double BruteAuc(const std::vector<float>& p, const std::vector<float>& y) {
  double wins = 0, pairs = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!(y[i] > 0)) continue;
    for (size_t j = 0; j < p.size(); ++j) {
      if (y[j] > 0) continue;
      pairs += 1;
      wins += p[i] > p[j] ? 1.0 : p[i] == p[j] ? 0.5 : 0.0;
    }
  }
  return wins / pairs;
}

double DirectLogloss(const std::vector<float>& p, const std::vector<float>& y) {
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    // The probability of the true class, clamped (the documented definition;
    // clamping p itself instead differs at p = 0 or 1 by ~1e-4 in the log).
    double q = y[i] > 0 ? p[i] : 1.0 - p[i];
    sum += -std::log(std::min(std::max(q, 1e-15), 1 - 1e-15));
  }
  return sum / p.size();
}

double DirectAccuracy(const std::vector<float>& p, const std::vector<float>& y) {
  double ok = 0;
  for (size_t i = 0; i < p.size(); ++i) ok += ((p[i] >= 0.5f) == (y[i] > 0));
  return ok / p.size();
}

TEST(Metrics, HandCases) {
  BinaryMetrics m = ComputeBinaryMetrics(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f},
                                         std::vector<float>{0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(m.auc, 0.75);  // sklearn's roc_auc_score example
  EXPECT_EQ(m.rows, 4u);
  EXPECT_EQ(m.positives, 2u);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);

  // Perfect, reversed, all tied.
  EXPECT_DOUBLE_EQ(ComputeBinaryMetrics(std::vector<float>{0.2f, 0.9f}, std::vector<float>{0, 1}).auc, 1.0);
  EXPECT_DOUBLE_EQ(ComputeBinaryMetrics(std::vector<float>{0.9f, 0.2f}, std::vector<float>{0, 1}).auc, 0.0);
  EXPECT_DOUBLE_EQ(
      ComputeBinaryMetrics(std::vector<float>{0.5f, 0.5f, 0.5f}, std::vector<float>{0, 1, 1}).auc, 0.5);
  // -1/+1 labels; -0 and +0 tie.
  EXPECT_DOUBLE_EQ(
      ComputeBinaryMetrics(std::vector<float>{-0.0f, 0.0f}, std::vector<float>{-1, 1}).auc, 0.5);
  // Negative and positive scores order correctly (the radix key handles the sign).
  EXPECT_DOUBLE_EQ(ComputeBinaryMetrics(std::vector<float>{-3.f, -1.f, 2.f, -2.f},
                                        std::vector<float>{-1, 1, 1, -1})
                       .auc,
                   1.0);
}

TEST(Metrics, LoglossClampsAndSimpleValues) {
  BinaryMetrics m = ComputeBinaryMetrics(std::vector<float>{0.5f}, std::vector<float>{1});
  EXPECT_NEAR(m.logloss, std::log(2.0), 1e-12);
  // A certain mistake costs -log(1e-15), not infinity.
  m = ComputeBinaryMetrics(std::vector<float>{0.0f, 1.0f}, std::vector<float>{1, 0});
  EXPECT_NEAR(m.logloss, -std::log(1e-15), 1e-6);
  EXPECT_TRUE(std::isfinite(m.logloss));
  EXPECT_DOUBLE_EQ(m.accuracy, 0.0);
}

TEST(Metrics, UndefinedCasesAreNaN) {
  BinaryMetrics empty = ComputeBinaryMetrics({}, {});
  EXPECT_EQ(empty.rows, 0u);
  EXPECT_TRUE(std::isnan(empty.logloss));
  EXPECT_TRUE(std::isnan(empty.auc));
  EXPECT_TRUE(std::isnan(empty.accuracy));

  BinaryMetrics one_class =
      ComputeBinaryMetrics(std::vector<float>{0.2f, 0.7f}, std::vector<float>{1, 1});
  EXPECT_TRUE(std::isnan(one_class.auc));
  EXPECT_FALSE(std::isnan(one_class.logloss));
  EXPECT_DOUBLE_EQ(one_class.accuracy, 0.5);

  BinaryMetrics nan = ComputeBinaryMetrics(std::vector<float>{std::nanf(""), 0.7f},
                                           std::vector<float>{0, 1});
  EXPECT_TRUE(std::isnan(nan.auc));
  EXPECT_TRUE(std::isnan(nan.logloss));
  EXPECT_DOUBLE_EQ(nan.accuracy, 1.0);  // NaN counts as predicted negative
}

TEST(Metrics, RandomWithTiesMatchesBruteForce) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = 1 + rng() % 600;
    const int levels = 1 + rng() % 30;  // few levels: many ties
    std::vector<float> p(n), y(n);
    for (size_t i = 0; i < n; ++i) {
      p[i] = static_cast<float>(rng() % (levels + 1)) / levels;
      // Labels correlated with the score so AUC is not always ~0.5.
      y[i] = (std::uniform_real_distribution<float>(0, 1)(rng) < 0.2f + 0.6f * p[i]) ? 1.f : 0.f;
      if (trial % 2) y[i] = y[i] > 0 ? 1.f : -1.f;
    }
    BinaryMetrics m = ComputeBinaryMetrics(p, y);
    EXPECT_EQ(m.rows, n);
    EXPECT_NEAR(m.logloss, DirectLogloss(p, y), 1e-9) << trial;
    EXPECT_DOUBLE_EQ(m.accuracy, DirectAccuracy(p, y)) << trial;
    const bool both = m.positives > 0 && m.positives < n;
    if (both) {
      EXPECT_NEAR(m.auc, BruteAuc(p, y), 1e-12) << trial;
    } else {
      EXPECT_TRUE(std::isnan(m.auc));
    }
  }
}

TEST(Metrics, RandomContinuousScoresMatchBruteForce) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0, 3);
  std::vector<float> p(2000), y(2000);
  for (size_t i = 0; i < p.size(); ++i) {
    y[i] = rng() % 3 == 0 ? 1.f : 0.f;
    p[i] = 1 / (1 + std::exp(-(g(rng) + (y[i] > 0 ? 1.f : -1.f))));
  }
  BinaryMetrics m = ComputeBinaryMetrics(p, y);
  EXPECT_NEAR(m.auc, BruteAuc(p, y), 1e-12);
  EXPECT_NEAR(m.logloss, DirectLogloss(p, y), 1e-9);
}

TEST(Metrics, AccumulatorChunksEqualWholeAndClearReuses) {
  std::mt19937 rng(3);
  std::vector<float> p(1000), y(1000);
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] = static_cast<float>(rng() % 50) / 49;
    y[i] = rng() % 2 ? 1.f : 0.f;
  }
  BinaryMetrics whole = ComputeBinaryMetrics(p, y);
  BinaryMetricsAccumulator acc;
  for (int round = 0; round < 2; ++round) {
    acc.Clear();
    for (size_t b = 0; b < p.size(); b += 77) {
      size_t e = std::min(p.size(), b + 77);
      acc.Add(std::span<const float>(p).subspan(b, e - b),
              std::span<const float>(y).subspan(b, e - b));
    }
    BinaryMetrics m = acc.Finish();
    EXPECT_EQ(m.rows, whole.rows);
    EXPECT_EQ(m.positives, whole.positives);
    EXPECT_DOUBLE_EQ(m.auc, whole.auc);
    EXPECT_NEAR(m.logloss, whole.logloss, 1e-12);
    EXPECT_DOUBLE_EQ(m.accuracy, whole.accuracy);
  }
}

TEST(Metrics, Regression) {
  const Metrics m = ComputeRegressionMetrics(std::vector<float>{3.0f, 4.5f, 1.0f},
                                             std::vector<float>{4.0f, 4.0f, 1.0f});
  EXPECT_EQ(m.rows, 3u);
  EXPECT_NEAR(m.rmse, std::sqrt((1.0 + 0.25) / 3), 1e-12);
  EXPECT_NEAR(m.mae, 1.5 / 3, 1e-12);
  EXPECT_TRUE(std::isnan(m.logloss) && std::isnan(m.auc));
  EXPECT_EQ(m.Get("rmse"), m.rmse);
  EXPECT_TRUE(std::isnan(m.Get("nope")));
  EXPECT_TRUE(std::isnan(ComputeRegressionMetrics({}, {}).rmse));
  EXPECT_TRUE(std::isnan(ComputeRegressionMetrics(std::vector<float>{std::nanf("")},
                                                  std::vector<float>{1.0f}).rmse));
}

TEST(Metrics, Multiclass) {
  // Rows of 3 classes: right (p 0.7), wrong (true class p 0.2), right (p 0.5).
  const std::vector<float> p = {0.7f, 0.2f, 0.1f, 0.5f, 0.2f, 0.3f, 0.25f, 0.25f, 0.5f};
  const Metrics m = ComputeMulticlassMetrics(p, std::vector<float>{0, 1, 2}, 3);
  EXPECT_EQ(m.rows, 3u);
  EXPECT_NEAR(m.logloss, -(std::log(0.7) + std::log(0.2) + std::log(0.5)) / 3, 1e-6);
  EXPECT_NEAR(m.accuracy, 2.0 / 3, 1e-12);
  EXPECT_TRUE(std::isnan(m.rmse));
  // A label outside the classes is a miss at probability 0 (clamped to 1e-15).
  const Metrics out = ComputeMulticlassMetrics(std::vector<float>{0.5f, 0.5f},
                                               std::vector<float>{7}, 2);
  EXPECT_NEAR(out.logloss, -std::log(kLoglossEpsilon), 1e-9);
  EXPECT_EQ(out.accuracy, 0.0);
}

}  // namespace
}  // namespace virga
