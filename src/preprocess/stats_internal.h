// Internal helpers shared by the normalization steps.
#pragma once

#include <algorithm>

#include "virga/dataset.h"

namespace virga::preprocess_internal {

// Folds one stored value into a running statistic.
inline void Accumulate(FeatureStat* s, double v) {
  if (s->count == 0) {
    s->min = v;
    s->max = v;
  } else {
    s->min = std::min(s->min, v);
    s->max = std::max(s->max, v);
  }
  s->count++;
  s->sum += v;
  s->sum_sq += v * v;
}

}  // namespace virga::preprocess_internal
