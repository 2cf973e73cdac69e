#include "virga/successive_halving.h"

#include <algorithm>
#include <cmath>

namespace virga {

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  if (frac == 0 || v[hi] == v[lo]) return v[lo];  // no inf * 0 or inf - inf
  return v[lo] + (v[hi] - v[lo]) * frac;
}

Result<SuccessiveHalving> SuccessiveHalving::Create(double eta, double min_resource,
                                                    Resource resource, double max_resource) {
  if (!(eta > 1)) return Status::InvalidArgument("successive halving: eta must be > 1");
  if (!(min_resource >= 0) || !std::isfinite(min_resource))
    return Status::InvalidArgument("successive halving: min_resource must be >= 0");
  if (!(max_resource >= 0) || !std::isfinite(max_resource))
    return Status::InvalidArgument("successive halving: max_resource must be >= 0");
  if (resource == Resource::kSeconds && max_resource <= 0)
    return Status::InvalidArgument(
        "successive halving: resource 'time' needs max_resource (seconds)");
  return SuccessiveHalving(eta, min_resource, resource, max_resource);
}

SuccessiveHalving::SuccessiveHalving(SuccessiveHalving&& other) noexcept
    : eta_(other.eta_),
      min_resource_(other.min_resource_),
      max_resource_(other.max_resource_),
      resource_(other.resource_) {
  std::lock_guard<std::mutex> lock(other.mu_);
  seen_ = std::move(other.seen_);
}

std::vector<double> SuccessiveHalving::Rungs(double full) const {
  if (max_resource_ > 0) full = max_resource_;
  std::vector<double> out;
  for (double r = min_resource_ > 0 ? min_resource_ : full / (eta_ * eta_);
       r > 0 && r < full * (1 - 1e-9); r *= eta_)
    out.push_back(r);
  return out;
}

double SuccessiveHalving::Used(const Point& p, double train_rows) const {
  if (resource_ == Resource::kSeconds) return p.seconds;
  return p.samples / std::max(1.0, train_rows);
}

std::optional<double> SuccessiveHalving::LossAt(std::span<const Point> history, double rung,
                                                double train_rows) const {
  bool have_prev = false;
  double r0 = 0, l0 = 0;
  for (const Point& h : history) {
    const double r = Used(h, train_rows);
    if (r >= rung) {
      if (!have_prev || !std::isfinite(h.test_metric)) return h.test_metric;
      const double w = r > r0 ? (rung - r0) / (r - r0) : 1.0;
      return l0 + w * (h.test_metric - l0);
    }
    have_prev = std::isfinite(h.test_metric);
    r0 = r;
    l0 = h.test_metric;
  }
  return std::nullopt;
}

bool SuccessiveHalving::Decide(double rung, double loss) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double>& seen = seen_[rung];
  const bool ok = std::isfinite(loss) && (seen.empty() || loss <= Percentile(seen, 100.0 / eta_));
  seen.push_back(std::isfinite(loss) ? loss : INFINITY);
  return ok;
}

}  // namespace virga
