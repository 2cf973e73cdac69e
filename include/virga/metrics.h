// Metrics of a model's predictions against labels, by task (ModelTask,
// include/virga/model.h): binary logloss / AUC / accuracy, regression RMSE /
// MAE, multiclass logloss / accuracy. `Metrics` holds any of them, the
// others NaN; jobs report the ones of their model's task.
//
// Binary classification metrics are over (probability, label) pairs.
//
// A row is positive when its label > 0 (0/1 and -1/+1 labels both work).
// Probabilities are the model's P(positive).
//
// Definitions:
//   logloss   mean of -log(probability given to the true class), that
//             probability clamped to [1e-15, 1 - 1e-15] so a certain mistake
//             costs -log(1e-15) ~ 34.54, not infinity (sklearn's log_loss).
//   auc       the probability that a random positive scores above a random
//             negative, ties counting one half (the rank-sum / Mann-Whitney
//             form with average ranks for ties), computed in O(n) after a
//             radix sort of the scores.
//   accuracy  share of rows with (p >= 0.5) == (label > 0).
//
// Undefined values are NaN, never an exception:
//   - no rows: all three are NaN;
//   - only one class present: auc is NaN (there is no positive/negative pair
//     to rank; sklearn raises here, and returning 0.5 would look like a
//     useless model); logloss and accuracy are still defined;
//   - a NaN probability (a diverged model): logloss and auc are NaN; the row
//     counts as predicted negative for accuracy.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

namespace virga {

inline constexpr double kLoglossEpsilon = 1e-15;

struct BinaryMetrics {
  double logloss = std::numeric_limits<double>::quiet_NaN();
  double auc = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  uint64_t rows = 0;
  uint64_t positives = 0;  // rows with label > 0
};

// Metrics of `prob[i]` against `labels[i]`.
// REQUIRES: prob.size() == labels.size() (only the common prefix is used
// otherwise; debug builds assert).
BinaryMetrics ComputeBinaryMetrics(std::span<const float> prob, std::span<const float> labels);

// The same metrics fed in pieces (e.g. one chunk of predictions at a time).
// Keeps 8 bytes per row added (for the AUC sort) plus as much scratch at
// Finish; Clear() keeps that capacity, so a reused accumulator allocates
// nothing once it has seen its largest input. Not thread-safe.
class BinaryMetricsAccumulator {
 public:
  // Reserves room for `rows` rows (optional; avoids growth while adding).
  void Reserve(size_t rows);
  // REQUIRES: prob.size() == labels.size() (see ComputeBinaryMetrics).
  void Add(std::span<const float> prob, std::span<const float> labels);
  // Metrics of every row added since the last Clear(). Does not clear.
  BinaryMetrics Finish();
  void Clear();

 private:
  double loss_sum_ = 0;
  uint64_t correct_ = 0;
  uint64_t positives_ = 0;
  bool saw_nan_ = false;
  // One entry per row: the order-preserving integer image of the score in
  // the high 32 bits, the label in bit 0.
  std::vector<uint64_t> entries_;
  std::vector<uint64_t> scratch_;  // radix sort buffer
};

// One evaluation, whatever the task: the metrics the task does not define are
// NaN.
//   rmse      sqrt(mean (prediction - label)^2); mae  mean |prediction - label|
//   multiclass logloss  mean of -log(probability given to the label's class),
//             clamped as above (sklearn's log_loss); accuracy: share of rows
//             whose most probable class (the first on ties) is the label.
// A NaN prediction makes the losses NaN (a diverged model).
struct Metrics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double logloss = kNaN, auc = kNaN, accuracy = kNaN;
  double rmse = kNaN, mae = kNaN;
  uint64_t rows = 0;
  uint64_t positives = 0;  // binary: rows with label > 0

  // The metric called `name` ("logloss", "auc", "accuracy", "rmse", "mae");
  // NaN for other names.
  double Get(std::string_view name) const;
};

Metrics FromBinary(const BinaryMetrics& m);
// REQUIRES: pred.size() == labels.size() (the common prefix is used otherwise).
Metrics ComputeRegressionMetrics(std::span<const float> pred, std::span<const float> labels);
// prob[row * classes + c]: P(class c) of row `row`; a label is its class
// number (rounded down; outside [0, classes) it counts as a miss with
// probability 0). REQUIRES: prob.size() == labels.size() * classes.
Metrics ComputeMulticlassMetrics(std::span<const float> prob, std::span<const float> labels,
                                 uint32_t classes);

}  // namespace virga
