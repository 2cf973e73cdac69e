#include "virga/metrics.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <utility>

namespace virga {
namespace {

// Maps a float to a uint32 whose unsigned order is the float order (for
// non-NaN values); -0 and +0 map to the same image so they tie.
uint32_t OrderedBits(float f) {
  if (f == 0.0f) f = 0.0f;
  const uint32_t u = std::bit_cast<uint32_t>(f);
  return (u & 0x8000'0000u) ? ~u : (u | 0x8000'0000u);
}

// LSD radix sort of *v by its high 32 bits, 11/11/10-bit digits; *tmp is
// scratch of the same size. Passes whose digit is constant are skipped
// (probabilities in [0, 1] share their top bits).
void SortByHigh32(std::vector<uint64_t>* v, std::vector<uint64_t>* tmp) {
  constexpr int kShift[3] = {32, 43, 54};
  constexpr int kBits[3] = {11, 11, 10};
  std::array<std::array<uint32_t, 2048>, 3> count{};
  for (uint64_t e : *v)
    for (int p = 0; p < 3; ++p) ++count[p][(e >> kShift[p]) & ((1u << kBits[p]) - 1)];
  tmp->resize(v->size());
  for (int p = 0; p < 3; ++p) {
    const uint32_t buckets = 1u << kBits[p];
    const uint64_t mask = buckets - 1;
    if (std::find(count[p].begin(), count[p].begin() + buckets, v->size()) !=
        count[p].begin() + buckets)
      continue;  // every entry has the same digit
    uint32_t sum = 0;
    for (uint32_t b = 0; b < buckets; ++b) sum += std::exchange(count[p][b], sum);
    for (uint64_t e : *v) (*tmp)[count[p][(e >> kShift[p]) & mask]++] = e;
    v->swap(*tmp);
  }
}

}  // namespace

void BinaryMetricsAccumulator::Reserve(size_t rows) {
  entries_.reserve(rows);
  scratch_.reserve(rows);
}

void BinaryMetricsAccumulator::Add(std::span<const float> prob, std::span<const float> labels) {
  assert(prob.size() == labels.size());
  const size_t n = std::min(prob.size(), labels.size());
  for (size_t i = 0; i < n; ++i) {
    const bool pos = labels[i] > 0;
    const float pf = prob[i];
    if (std::isnan(pf)) saw_nan_ = true;
    // The probability given to the true class, clamped (so p = 1 on a
    // negative costs exactly -log(1e-15)).
    const double p_true = pos ? static_cast<double>(pf) : 1.0 - static_cast<double>(pf);
    loss_sum_ -= std::log(std::clamp(p_true, kLoglossEpsilon, 1 - kLoglossEpsilon));
    correct_ += (pf >= 0.5f) == pos;
    positives_ += pos;
    entries_.push_back(static_cast<uint64_t>(OrderedBits(pf)) << 32 | (pos ? 1 : 0));
  }
}

BinaryMetrics BinaryMetricsAccumulator::Finish() {
  BinaryMetrics m;
  m.rows = entries_.size();
  m.positives = positives_;
  if (m.rows == 0) return m;
  m.logloss = saw_nan_ ? std::nan("") : loss_sum_ / m.rows;
  m.accuracy = static_cast<double>(correct_) / m.rows;
  const uint64_t negatives = m.rows - m.positives;
  if (saw_nan_ || m.positives == 0 || negatives == 0) return m;

  SortByHigh32(&entries_, &scratch_);
  // Walk groups of equal scores in ascending order: each positive beats the
  // negatives below its group and ties half of those in it.
  double wins = 0;
  uint64_t neg_below = 0;
  for (size_t i = 0; i < entries_.size();) {
    const uint64_t score = entries_[i] >> 32;
    uint64_t pos = 0, neg = 0;
    for (; i < entries_.size() && (entries_[i] >> 32) == score; ++i) {
      const uint64_t y = entries_[i] & 1;
      pos += y;
      neg += 1 - y;
    }
    wins += static_cast<double>(pos) * (static_cast<double>(neg_below) + 0.5 * neg);
    neg_below += neg;
  }
  m.auc = wins / (static_cast<double>(m.positives) * static_cast<double>(negatives));
  return m;
}

void BinaryMetricsAccumulator::Clear() {
  loss_sum_ = 0;
  correct_ = 0;
  positives_ = 0;
  saw_nan_ = false;
  entries_.clear();
}

BinaryMetrics ComputeBinaryMetrics(std::span<const float> prob, std::span<const float> labels) {
  BinaryMetricsAccumulator acc;
  acc.Reserve(std::min(prob.size(), labels.size()));
  acc.Add(prob, labels);
  return acc.Finish();
}

double Metrics::Get(std::string_view name) const {
  if (name == "logloss") return logloss;
  if (name == "auc") return auc;
  if (name == "accuracy") return accuracy;
  if (name == "rmse") return rmse;
  if (name == "mae") return mae;
  return kNaN;
}

Metrics FromBinary(const BinaryMetrics& b) {
  Metrics m;
  m.logloss = b.logloss;
  m.auc = b.auc;
  m.accuracy = b.accuracy;
  m.rows = b.rows;
  m.positives = b.positives;
  return m;
}

Metrics ComputeRegressionMetrics(std::span<const float> pred, std::span<const float> labels) {
  assert(pred.size() == labels.size());
  Metrics m;
  m.rows = std::min(pred.size(), labels.size());
  if (m.rows == 0) return m;
  double sq = 0, abs = 0;
  for (size_t i = 0; i < m.rows; ++i) {
    const double e = static_cast<double>(pred[i]) - labels[i];
    sq += e * e;
    abs += std::fabs(e);
  }
  m.rmse = std::sqrt(sq / static_cast<double>(m.rows));
  m.mae = abs / static_cast<double>(m.rows);
  return m;
}

Metrics ComputeMulticlassMetrics(std::span<const float> prob, std::span<const float> labels,
                                 uint32_t classes) {
  assert(classes > 0 && prob.size() == labels.size() * classes);
  Metrics m;
  if (classes == 0) return m;
  m.rows = std::min<size_t>(labels.size(), prob.size() / classes);
  if (m.rows == 0) return m;
  double loss = 0;
  uint64_t correct = 0;
  for (size_t r = 0; r < m.rows; ++r) {
    const float* p = prob.data() + r * classes;
    const double label = labels[r];
    const bool in_range = label >= 0 && label < classes;
    const uint32_t y = in_range ? static_cast<uint32_t>(label) : 0;
    const double p_true = in_range ? static_cast<double>(p[y]) : 0.0;
    loss -= std::isnan(p_true) ? p_true
                               : std::log(std::clamp(p_true, kLoglossEpsilon, 1 - kLoglossEpsilon));
    const uint32_t best = static_cast<uint32_t>(std::max_element(p, p + classes) - p);
    correct += in_range && best == y;
  }
  m.logloss = loss / static_cast<double>(m.rows);
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.rows);
  return m;
}

}  // namespace virga
