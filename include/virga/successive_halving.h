// Successive halving as a stopping rule for concurrent experiments (the
// asynchronous rule of Li et al., "A System for Massively Parallel
// Hyperparameter Tuning", in its stop-or-continue form). One implementation,
// used by `virga search --policy asha` and by the Python package's
// virga.SuccessiveHalving.
//
// Rungs sit at min_resource * eta^k (k = 0, 1, ...) below the experiments'
// full resource, measured in epochs (samples processed / training rows) or
// seconds. When an experiment reaches a rung, its test logloss there is
// compared with the losses recorded at that rung by experiments that reached
// it earlier: it continues iff the loss is finite and <= their
// (100/eta)-th percentile (linear interpolation; the first to arrive always
// continues). So about 1/eta of the experiments pass each rung, and no
// experiment waits for another. The loss at a rung is interpolated between
// the evaluations around it: evaluations are periodic, so a fast run may be
// evaluated well past a rung, and judging it there would favour it.
//
// Thread safety: Decide() may be called from any thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "virga/status.h"

namespace virga {

class SuccessiveHalving {
 public:
  enum class Resource { kEpochs, kSeconds };
  // One evaluation of an experiment, as in its history.
  struct Point {
    double seconds = 0;     // since the job started
    double samples = 0;     // rows processed
    double test_metric = 0;  // the model's primary metric (lower is better)
  };

  // eta > 1; min_resource <= 0: full / eta^2 (two rungs); kSeconds needs
  // max_resource > 0 (the full resource in seconds).
  static Result<SuccessiveHalving> Create(double eta, double min_resource = 0,
                                          Resource resource = Resource::kEpochs,
                                          double max_resource = 0);
  SuccessiveHalving(SuccessiveHalving&& other) noexcept;

  // The rungs below `full` (the experiments' epochs; max_resource if set).
  std::vector<double> Rungs(double full) const;
  // Resource spent at a point: epochs (samples / train_rows) or seconds.
  double Used(const Point& p, double train_rows) const;
  // The test metric at exactly `rung`; nullopt until an evaluation at or
  // past the rung exists.
  std::optional<double> LossAt(std::span<const Point> history, double rung,
                               double train_rows) const;
  // Records `loss` at `rung`; true to continue, false to stop.
  bool Decide(double rung, double loss);

  double eta() const { return eta_; }
  Resource resource() const { return resource_; }

 private:
  SuccessiveHalving(double eta, double min_resource, Resource resource, double max_resource)
      : eta_(eta), min_resource_(min_resource), max_resource_(max_resource), resource_(resource) {}

  double eta_, min_resource_, max_resource_;
  Resource resource_;
  std::mutex mu_;
  std::map<double, std::vector<double>> seen_;  // GUARDED_BY(mu_): rung -> losses recorded
};

// The q-th percentile (0..100) of v with linear interpolation (numpy's default).
// REQUIRES: !v.empty().
double Percentile(std::vector<double> v, double q);

}  // namespace virga
