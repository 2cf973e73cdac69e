// How long Evaluator::Evaluate takes on a Criteo-shaped test set (the
// scheduler calls it about once a second while training runs).
// Usage: bench_eval [rows=200000] [features_per_row=39] [feature_space=1000000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "virga/evaluator.h"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  const size_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const int per_row = argc > 2 ? std::atoi(argv[2]) : 39;
  const uint32_t space = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1000000;

  std::mt19937 rng(1);
  virga::RowBlock block;
  block.Reserve(rows, rows * per_row);
  for (size_t r = 0; r < rows; ++r) {
    for (int k = 0; k < per_row; ++k) block.AddFeature(rng() % space, 1.0f);
    block.EndRow(rng() % 4 == 0 ? 1.0f : 0.0f);
  }
  const auto t0 = Clock::now();
  virga::Evaluator ev(virga::ModelKind::kLogisticRegression, std::move(block));
  const double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

  std::vector<float> w(ev.keys().size() * ev.width());
  std::normal_distribution<float> g(0, 0.1f);
  for (float& x : w) x = g(rng);
  ev.Evaluate(w);  // warm up
  const int reps = 20;
  double best = 1e300, total = 0;
  virga::Metrics m;
  for (int i = 0; i < reps; ++i) {
    const auto s = Clock::now();
    m = ev.Evaluate(w);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
    best = std::min(best, ms);
    total += ms;
  }
  const auto s = Clock::now();
  std::vector<float> scores = ev.Scores(w);
  const double scores_ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
  std::printf("rows %zu, %d features/row, %zu keys: build %.1f ms; Evaluate best %.2f ms, mean "
              "%.2f ms (%.1f M entries/s); Scores %.2f ms; logloss %.4f auc %.4f\n",
              rows, per_row, ev.keys().size(), build_ms, best, total / reps,
              rows * per_row / (best * 1e3), scores_ms, m.logloss, m.auc);
  return scores.size() == rows ? 0 : 1;
}
