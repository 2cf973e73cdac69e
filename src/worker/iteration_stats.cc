#include "worker/iteration_stats.h"

#include <algorithm>
#include <cmath>

namespace virga::worker {

size_t HistogramBucket(uint64_t ns) {
  if (ns <= 1) return 0;
  const auto b = static_cast<size_t>(8.0 * std::log2(static_cast<double>(ns)));
  return std::min(b, kHistogramBuckets - 1);
}

double HistogramQuantileUs(const std::vector<uint64_t>& histogram, double q) {
  uint64_t total = 0;
  for (uint64_t c : histogram) total += c;
  if (total == 0) return 0;
  const double rank = std::max(1.0, std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  size_t i = 0;
  for (; i < histogram.size(); ++i) {
    seen += histogram[i];
    if (static_cast<double>(seen) >= rank) break;
  }
  return std::exp2((static_cast<double>(i) + 0.5) / 8.0) / 1000.0;
}

IterationTimes IterationStats::Summary() const {
  IterationTimes t;
  t.iterations = iterations_;
  size_t used = histogram_.size();
  while (used > 0 && histogram_[used - 1] == 0) --used;
  t.histogram.assign(histogram_.begin(), histogram_.begin() + static_cast<ptrdiff_t>(used));
  if (iterations_ == 0) return t;
  const double n = static_cast<double>(iterations_);
  auto mean_us = [n](Nanos d) { return static_cast<double>(d.count()) / n / 1000.0; };
  t.data_wait_us = mean_us(data_wait_);
  t.pull_us = mean_us(pull_);
  t.compute_us = mean_us(compute_);
  t.push_us = mean_us(push_);
  t.p50_us = HistogramQuantileUs(t.histogram, 0.5);
  t.p99_us = HistogramQuantileUs(t.histogram, 0.99);
  return t;
}

}  // namespace virga::worker
