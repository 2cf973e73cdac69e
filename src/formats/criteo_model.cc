#include "formats/criteo_model.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace virga::formats {
namespace {

using criteo::kNumCatFields;
using criteo::kNumIntFields;

// An integer field: geometric counts floor(Exp(mean a)), or log-normal
// floor(exp(a + b z)); with probability `negative` a value in -3..-1.
struct IntSpec {
  double missing;
  bool lognormal;
  double a, b;
  double negative;
};
constexpr IntSpec kIntSpecs[kNumIntFields] = {
    {0.40, false, 3.0, 0, 0},  {0.00, true, 1.0, 2.0, 0.10}, {0.20, true, 2.0, 1.5, 0},
    {0.20, false, 7.0, 0, 0},  {0.03, true, 8.0, 2.5, 0},    {0.22, true, 4.0, 1.8, 0},
    {0.04, true, 2.0, 1.5, 0}, {0.00, false, 12.0, 0, 0},    {0.04, true, 4.0, 1.5, 0},
    {0.40, false, 0.6, 0, 0},  {0.04, false, 2.5, 0, 0},     {0.38, false, 0.5, 0, 0},
    {0.22, false, 8.0, 0, 0}};
constexpr double kIntSigma = 0.21;

// A categorical field: vocabulary size and missing rate.
struct CatSpec {
  uint32_t vocab;
  double missing;
};
constexpr CatSpec kCatSpecs[kNumCatFields] = {
    {1400, 0},    {550, 0},    {100000, 0.03}, {40000, 0.03}, {300, 0},  {24, 0.12},
    {12000, 0},   {630, 0},    {5, 0},         {25000, 0},    {5000, 0}, {60000, 0.03},
    {3200, 0},    {27, 0},     {14000, 0},     {8000, 0.03},  {10, 0},   {4500, 0},
    {2000, 0.40}, {6, 0.40},   {15000, 0.03},  {18, 0.40},    {15, 0},   {6000, 0.03},
    {100, 0.40},  {3000, 0.40}};
constexpr double kZipfExponent = 1.1;

// Small vocabularies get strong weights; large ones weak, since the rare
// tokens of their Zipf tail are seen too seldom to be learned.
double CatSigma(uint32_t vocab) {
  if (vocab <= 30) return 0.40;
  if (vocab <= 1000) return 0.30;
  if (vocab <= 10000) return 0.21;
  return 0.13;
}

constexpr double kPositiveRate = 0.25;
constexpr int kCalibrationRows = 1 << 15;
constexpr uint64_t kCalibrationBase = uint64_t{1} << 63;  // row ids never generated

uint64_t Mix64(uint64_t z) {  // the splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Hash8(uint64_t value, uint64_t seed) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  return XXH3_64bits_withSeed(bytes, sizeof(bytes), seed);
}

// Per-purpose seeds, so weights, tokens and rows use unrelated hashes.
uint64_t SubSeed(uint64_t seed, uint64_t purpose, int field) {
  return Mix64(seed ^ Mix64(purpose * 0x100 + static_cast<uint64_t>(field)));
}
constexpr uint64_t kWeightPurpose = 1, kTokenPurpose = 2, kRowPurpose = 3, kLatentPurpose = 4;

// The planted interactions: pairs of categorical fields (0-based C index) of
// small vocabularies, so their pairs are seen often enough to be learned.
constexpr std::pair<int, int> kInteractingFields[] = {{1, 4}, {5, 13}, {7, 8}, {16, 22}};
constexpr int kLatentDims = 4;

class SplitMix {
 public:
  explicit SplitMix(uint64_t state) : state_(state) {}
  uint64_t Next() { return Mix64(state_ += 0x9e3779b97f4a7c15ull); }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1p-53; }  // (0, 1)
  uint64_t state() const { return state_; }

 private:
  uint64_t state_;
};

// Acklam's rational approximation of the standard normal quantile
// (relative error < 1.2e-9). REQUIRES: 0 < p < 1.
double InverseNormalCdf(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  auto tail = [&](double q) {
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  };
  if (p < kLow) return tail(std::sqrt(-2 * std::log(p)));
  if (p > 1 - kLow) return -tail(std::sqrt(-2 * std::log1p(-p)));
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// A weight ~ N(0, sigma) from a 64-bit hash, rounded to float.
double WeightOfHash(uint64_t h, double sigma) {
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1p-53;
  return static_cast<float>(sigma * InverseNormalCdf(u));
}

// True with probability p; draws nothing when p is 0.
bool Chance(SplitMix& rng, double p) { return p > 0 && rng.Uniform() < p; }

int64_t DrawInt(const IntSpec& s, SplitMix& rng) {
  if (Chance(rng, s.negative)) {
    return -1 - static_cast<int64_t>(rng.Next() % 3);
  }
  const double x = s.lognormal ? std::exp(s.a + s.b * InverseNormalCdf(rng.Uniform()))
                               : -s.a * std::log(rng.Uniform());
  return static_cast<int64_t>(std::min(x, 2e9));  // floor; far below 2^32
}

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

}  // namespace

CriteoModel::CriteoModel(uint64_t seed, double interaction_sd)
    : seed_(seed), interaction_sd_(interaction_sd) {
  BuildTables();
  SolveBias();
}

int CriteoModel::IntSlot(int64_t code) {
  if (code == criteo::kMissingIntCode) return kIntSlots - 1;
  if (code <= 2) return static_cast<int>(code + 3);  // -3..2 -> 0..5
  if (code == criteo::kHugeIntCode) return kIntSlots - 2;
  return static_cast<int>(code - 1001 + 6);  // 1001..1491 -> 6..496
}

double CriteoModel::IntWeight(int field, int64_t code) const {
  return WeightOfHash(Hash8(static_cast<uint64_t>(code), SubSeed(seed_, kWeightPurpose, field)),
                      kIntSigma);
}

double CriteoModel::CatWeight(int field, std::string_view token) const {
  const uint64_t h =
      XXH3_64bits_withSeed(token.data(), token.size(), SubSeed(seed_, kWeightPurpose, field));
  return WeightOfHash(h, CatSigma(kCatSpecs[field - criteo::kFirstCatField].vocab));
}

void CriteoModel::BuildTables() {
  int_weight_.resize(kNumIntFields);
  for (int i = 0; i < kNumIntFields; ++i) {
    auto& w = int_weight_[i];
    w.fill(0);
    for (int64_t code = -3; code <= 2; ++code) w[IntSlot(code)] = IntWeight(i + 1, code);
    for (int64_t code = 1001; code <= 1491; ++code) w[IntSlot(code)] = IntWeight(i + 1, code);
    w[IntSlot(criteo::kHugeIntCode)] = IntWeight(i + 1, criteo::kHugeIntCode);
    w[IntSlot(criteo::kMissingIntCode)] = IntWeight(i + 1, criteo::kMissingIntCode);
  }
  zipf_.resize(kNumCatFields);
  for (int j = 0; j < kNumCatFields; ++j) {
    const int field = criteo::kFirstCatField + j;
    const uint32_t n = kCatSpecs[j].vocab;
    cat_missing_weight_[j] = CatWeight(field, "");
    // Vose's alias method over Zipf probabilities, scaled so they average 1.
    std::vector<double> p(n);
    double total = 0;
    for (uint32_t r = 0; r < n; ++r) total += p[r] = std::pow(r + 1.0, -kZipfExponent);
    std::vector<uint32_t> small, large;
    for (uint32_t r = 0; r < n; ++r) {
      p[r] *= n / total;
      (p[r] < 1 ? small : large).push_back(r);
    }
    std::vector<ZipfSlot>& slots = zipf_[j];
    slots.assign(n, ZipfSlot{UINT32_MAX, 0, 0, 0});
    for (uint32_t r = 0; r < n; ++r) slots[r].alias = r;
    while (!small.empty() && !large.empty()) {
      const uint32_t s = small.back(), l = large.back();
      small.pop_back();
      slots[s].threshold = static_cast<uint32_t>(p[s] * 0x1p32);
      slots[s].alias = l;
      p[l] -= 1 - p[s];
      if (p[l] < 1) {
        large.pop_back();
        small.push_back(l);
      }
    }
    // Ranks left in either list have probability 1 up to rounding: kept.
    const uint64_t token_seed = SubSeed(seed_, kTokenPurpose, field);
    char text[kCriteoTokenChars];
    for (uint32_t r = 0; r < n; ++r) {
      slots[r].token = static_cast<uint32_t>(Hash8(r, token_seed));
      FormatToken(slots[r].token, text);
      slots[r].weight = static_cast<float>(CatWeight(field, std::string_view(text, 8)));
    }
  }
}

double CriteoModel::Draw(uint64_t* rng_state, CriteoRow* out) const {
  SplitMix rng(*rng_state);
  // Categorical slots first, prefetched, so their cache misses overlap with
  // each other and with the integer fields' work.
  uint32_t slot[kNumCatFields];
  uint32_t coin[kNumCatFields];
  for (int j = 0; j < kNumCatFields; ++j) {
    const bool missing = Chance(rng, kCatSpecs[j].missing);
    const uint64_t x = rng.Next();
    coin[j] = static_cast<uint32_t>(x);
    if (missing) {
      slot[j] = UINT32_MAX;
      continue;
    }
    slot[j] = static_cast<uint32_t>(((x >> 32) * zipf_[j].size()) >> 32);
    __builtin_prefetch(&zipf_[j][slot[j]]);
  }
  double score = 0;
  for (int i = 0; i < kNumIntFields; ++i) {
    const IntSpec& s = kIntSpecs[i];
    out->int_missing[i] = Chance(rng, s.missing);
    out->ints[i] = out->int_missing[i] ? 0 : DrawInt(s, rng);
    const int64_t code =
        out->int_missing[i] ? criteo::kMissingIntCode : criteo::IntCode(out->ints[i]);
    score += int_weight_[i][IntSlot(code)];
  }
  for (int j = 0; j < kNumCatFields; ++j) {
    out->cat_missing[j] = slot[j] == UINT32_MAX;
    if (out->cat_missing[j]) {
      out->cats[j] = 0;
      score += cat_missing_weight_[j];
      continue;
    }
    const ZipfSlot& a = zipf_[j][slot[j]];
    const ZipfSlot& hit = coin[j] < a.threshold ? a : zipf_[j][a.alias];
    out->cats[j] = hit.token;
    score += hit.weight;
  }
  *rng_state = rng.state();
  return score;
}

double CriteoModel::Interactions(const CriteoRow& row) const {
  if (interaction_sd_ == 0) return 0;
  double sum = 0;
  for (const auto& [a, b] : kInteractingFields) {
    if (row.cat_missing[a] || row.cat_missing[b]) continue;
    const uint64_t sa = SubSeed(seed_, kLatentPurpose, a), sb = SubSeed(seed_, kLatentPurpose, b);
    double dot = 0;
    for (int d = 0; d < kLatentDims; ++d) {
      dot += WeightOfHash(Hash8(uint64_t{row.cats[a]} * kLatentDims + d, sa), 1.0) *
             WeightOfHash(Hash8(uint64_t{row.cats[b]} * kLatentDims + d, sb), 1.0);
    }
    sum += dot;
  }
  return interaction_sd_ * sum / std::sqrt(static_cast<double>(kLatentDims));
}

void CriteoModel::Sample(uint64_t row, CriteoRow* out) const {
  uint64_t state = Mix64(SubSeed(seed_, kRowPurpose, 0) ^ Mix64(row));
  out->logit = bias_ + Draw(&state, out);
  out->logit += Interactions(*out);
  SplitMix rng(state);
  out->probability = Sigmoid(out->logit);
  out->label = rng.Uniform() < out->probability;
}

void CriteoModel::SolveBias() {
  std::vector<double> score(kCalibrationRows);
  CriteoRow row;
  for (int i = 0; i < kCalibrationRows; ++i) {
    uint64_t state = Mix64(SubSeed(seed_, kRowPurpose, 0) ^ Mix64(kCalibrationBase + i));
    score[i] = Draw(&state, &row);
    score[i] += Interactions(row);
  }
  // Newton on mean(sigmoid(b + score)) = kPositiveRate; the mean is
  // increasing and smooth in b.
  double b = 0;
  for (int iter = 0; iter < 50; ++iter) {
    double mean = 0, slope = 0;
    for (double s : score) {
      const double p = Sigmoid(b + s);
      mean += p;
      slope += p * (1 - p);
    }
    mean /= kCalibrationRows;
    slope /= kCalibrationRows;
    const double step = (mean - kPositiveRate) / slope;
    b -= std::clamp(step, -2.0, 2.0);
    if (std::fabs(step) < 1e-12) break;
  }
  bias_ = b;
}

}  // namespace virga::formats
