// The live line of `virga train`: the figures that matter (elapsed, epoch,
// test metric and its best, AUC for binary models, samples/s, workers) in at
// most 79 columns, so a redrawn line never wraps on an 80-column terminal:
//   "  12.3s  epoch 2/5  logloss 0.4512 (best 0.4498)  auc 0.7712  412k/s  4 workers"
#pragma once

#include <cstddef>
#include <string>

#include "virga/train.h"

namespace virga::cli {

inline constexpr size_t kTrainLineWidth = 79;

// The line for `p` (no "\r", no newline). Parts are dropped from the least
// important until it fits `width`: the workers alive, the failed ones, the
// best value, auc.
std::string TrainLine(const TrainProgress& p, size_t width = kTrainLineWidth);

// "12.3s", "4m05s", "2h03m".
std::string ElapsedText(double seconds);
// "950", "12.3k", "412k", "1.23M".
std::string CountText(double n);

}  // namespace virga::cli
