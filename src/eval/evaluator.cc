#include "virga/evaluator.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace virga {
namespace {

// Feature spaces up to this many indices (or twice the entries, if more) get a
// presence bitmap while slots are built; sparser ones are sorted.
constexpr uint64_t kDenseBitmapLimit = uint64_t{1} << 26;  // an 8 MB bitmap

// slots[e]: the number of bits of `bits` set below bit indices[e] (its rank),
// with below[w] the bits set in words before w.
template <typename Count>
inline void RankLoop(const uint64_t* bits, const uint32_t* below,
                     std::span<const uint32_t> indices, uint32_t* slots, Count count) {
  for (size_t e = 0; e < indices.size(); ++e) {
    const uint32_t i = indices[e];
    slots[e] = below[i >> 6] + count(bits[i >> 6] & ((uint64_t{1} << (i & 63)) - 1));
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
// Baseline x86-64 has no popcount instruction (std::popcount is then a
// library call per entry); CPUs that have one (all x86 servers of the last
// decade) take this copy of the loop, compiled with it.
__attribute__((target("popcnt"))) void RankSlotsPopcnt(const uint64_t* bits,
                                                       const uint32_t* below,
                                                       std::span<const uint32_t> indices,
                                                       uint32_t* slots) {
  RankLoop(bits, below, indices, slots,
           [](uint64_t x) { return static_cast<uint32_t>(__builtin_popcountll(x)); });
}
#endif

void RankSlots(const uint64_t* bits, const uint32_t* below, std::span<const uint32_t> indices,
               uint32_t* slots) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has_popcnt = __builtin_cpu_supports("popcnt");
  if (has_popcnt) return RankSlotsPopcnt(bits, below, indices, slots);
#endif
  RankLoop(bits, below, indices, slots,
           [](uint64_t x) { return static_cast<uint32_t>(std::popcount(x)); });
}

}  // namespace

const char* SplitName(Split split) { return split == Split::kTest ? "test" : "train"; }

Result<Split> ParseSplitName(std::string_view name) {
  if (name == "test") return Split::kTest;
  if (name == "train") return Split::kTrain;
  return Status::InvalidArgument("unknown split '" + std::string(name) +
                                 "' (expected test or train)");
}

Evaluator::Evaluator(std::unique_ptr<Model> model, RowBlock rows, EvaluatorOptions options)
    : model_(std::move(model)), options_(options) {
  assert(model_ != nullptr);
  width_ = model_->width();
  if (options_.chunk_rows == 0) options_.chunk_rows = 4096;
  const size_t nnz = rows.offsets().back();  // drops a row left unfinished
  labels_ = std::move(rows.labels());
  offsets_ = std::move(rows.offsets());
  indices_ = std::move(rows.indices());
  indices_.resize(nnz);
  if (!rows.all_ones()) {
    values_ = std::move(rows.values());
    values_.resize(nnz);
  }
  BuildSlots();
  scores_.resize(labels_.size() * model_->outputs());
  if (model_->task() == ModelTask::kBinary) metrics_.Reserve(labels_.size());
}

Evaluator::~Evaluator() = default;

void Evaluator::BuildSlots() {
  uint32_t max_index = 0;
  for (uint32_t i : indices_) max_index = std::max(max_index, i);
  const uint64_t space = uint64_t{max_index} + 1;
  slots_.resize(indices_.size());
  keys_.clear();
  if (!indices_.empty() && space <= std::max<uint64_t>(kDenseBitmapLimit, 2 * indices_.size())) {
    // A presence bit per index, then a slot = the number of present indices
    // below it: the rank of its bit (a count per 64-bit word plus a popcount).
    // An eighth of a byte per index keeps the random accesses in cache.
    const size_t words = static_cast<size_t>((space + 63) / 64);
    std::vector<uint64_t> bits(words, 0);
    for (uint32_t i : indices_) bits[i >> 6] |= uint64_t{1} << (i & 63);
    std::vector<uint32_t> below(words);
    uint32_t n = 0;
    for (size_t w = 0; w < words; ++w) {
      below[w] = n;
      n += static_cast<uint32_t>(std::popcount(bits[w]));
    }
    keys_.reserve(size_t{n} + 1);
    for (size_t w = 0; w < words; ++w) {
      for (uint64_t b = bits[w]; b != 0; b &= b - 1)
        keys_.push_back(uint64_t{w} * 64 + static_cast<uint64_t>(std::countr_zero(b)));
    }
    RankSlots(bits.data(), below.data(), indices_, slots_.data());
  } else {
    keys_.assign(indices_.begin(), indices_.end());
    std::sort(keys_.begin(), keys_.end());
    keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
    for (size_t e = 0; e < indices_.size(); ++e) {
      slots_[e] = static_cast<uint32_t>(
          std::lower_bound(keys_.begin(), keys_.end(), uint64_t{indices_[e]}) - keys_.begin());
    }
  }
  keys_.push_back(kBiasKey);  // feature keys are < 2^32, so it sorts last
  keys_.shrink_to_fit();
}

bool Evaluator::PredictAll(std::span<const float> weights, std::span<float> out) const {
  const size_t outputs = model_->outputs();
  if (weights.size() != keys_.size() * width_ || out.size() != labels_.size() * outputs) {
    assert(false && "Evaluator: weights.size() != keys().size() * width()");
    return false;
  }
  const RowBlockView all{labels_, offsets_, indices_, values_};
  SlotBatch batch;
  batch.bias_slot = static_cast<uint32_t>(keys_.size() - 1);
  batch.num_slots = static_cast<uint32_t>(keys_.size());
  for (size_t b = 0; b < labels_.size(); b += options_.chunk_rows) {
    const size_t e = std::min(labels_.size(), b + options_.chunk_rows);
    batch.rows = all.Slice(b, e);
    batch.slot = std::span<const uint32_t>(slots_).subspan(offsets_[b], offsets_[e] - offsets_[b]);
    model_->Predict(batch, weights, out.subspan(b * outputs, (e - b) * outputs));
  }
  return true;
}

Metrics Evaluator::Evaluate(std::span<const float> weights) const {
  std::lock_guard lock(mu_);
  if (!PredictAll(weights, scores_)) return Metrics{};
  switch (model_->task()) {
    case ModelTask::kRegression:
      return ComputeRegressionMetrics(scores_, labels_);
    case ModelTask::kMulticlass:
      return ComputeMulticlassMetrics(scores_, labels_, model_->outputs());
    case ModelTask::kBinary:
      break;
  }
  metrics_.Clear();
  metrics_.Add(scores_, labels_);
  return FromBinary(metrics_.Finish());
}

Metrics ComputeTaskMetrics(const Model& model, std::span<const float> scores,
                           std::span<const float> labels) {
  if (scores.size() != labels.size() * model.outputs()) return Metrics{};
  switch (model.task()) {
    case ModelTask::kRegression:
      return ComputeRegressionMetrics(scores, labels);
    case ModelTask::kMulticlass:
      return ComputeMulticlassMetrics(scores, labels, model.outputs());
    case ModelTask::kBinary:
      break;
  }
  return FromBinary(ComputeBinaryMetrics(scores, labels));
}

std::vector<float> Evaluator::Scores(std::span<const float> weights) const {
  std::vector<float> out(labels_.size() * model_->outputs());
  if (!PredictAll(weights, out)) return {};
  return out;
}

}  // namespace virga
