// IterationStats: the per-iteration time breakdown of a worker, recorded
// without allocation (a fixed log-scale histogram, see IterationTimes).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "virga/worker.h"

namespace virga::worker {

// Buckets of IterationTimes::histogram: 8 per power of two, up to 2^40 ns
// (18 minutes); longer iterations land in the last bucket.
inline constexpr size_t kHistogramBuckets = 8 * 40;

// The bucket of an iteration of `ns` nanoseconds: floor(8 * log2(ns)), 0 for ns <= 1.
size_t HistogramBucket(uint64_t ns);

// The q-quantile (0 < q <= 1) of a histogram in microseconds: the geometric
// middle of the bucket holding it. 0 for an empty histogram.
double HistogramQuantileUs(const std::vector<uint64_t>& histogram, double q);

class IterationStats {
 public:
  using Nanos = std::chrono::nanoseconds;
  // One iteration: its parts and its whole (>= the sum of the parts).
  void Record(Nanos data_wait, Nanos pull, Nanos compute, Nanos push, Nanos total) {
    ++iterations_;
    data_wait_ += data_wait;
    pull_ += pull;
    compute_ += compute;
    push_ += push;
    ++histogram_[HistogramBucket(static_cast<uint64_t>(total.count() < 0 ? 0 : total.count()))];
  }
  uint64_t iterations() const { return iterations_; }
  // Means, quantiles and the histogram (trimmed of empty top buckets).
  IterationTimes Summary() const;

 private:
  uint64_t iterations_ = 0;
  Nanos data_wait_{0}, pull_{0}, compute_{0}, push_{0};
  std::array<uint64_t, kHistogramBuckets> histogram_{};
};

}  // namespace virga::worker
