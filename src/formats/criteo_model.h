// The planted logistic model behind GenerateCriteo (datagen.h): how rows are
// drawn and labelled. Internal to src/formats; tests use it to recompute the
// Bayes logloss from the written text.
//
// Every feature the Criteo parser would produce for a field value carries a
// weight w(field, value) ~ N(0, sigma_field), derived by hashing (seed,
// field, the bytes the encoding hashes), so no weight table is needed to
// define the model (Sample caches them per Zipf rank and per integer bucket
// for speed). P(label = 1 | row) = sigmoid(bias + sum of the row's 39
// weights); the bias is solved so that about 25% of labels are 1.
//
// With interactions (sd > 0), the logit also gets planted pairwise terms, the
// kind a factorization machine fits and a linear model cannot: for each of 4
// pairs of low-vocabulary categorical fields (C2 x C5, C6 x C14, C8 x C9,
// C17 x C23), sd * <z_a, z_b> / 2 when both tokens are present, where each
// token has a latent vector z of 4 N(0, 1) coordinates derived by hashing
// (seed, field, token). Each present pair adds variance sd^2 to the logit.
//
// Field value distributions: integer fields are geometric or log-normal
// counts (I2 is sometimes -1..-3), each with its own missing rate (0-40%);
// categorical field C_j has a vocabulary of V_j tokens (V_j from 5 to 1e5)
// drawn Zipf(s = 1.1) over ranks; a token is 8 lowercase hex digits of a
// hash of (seed, field, rank). Details and the chosen sigmas: criteo_model.cc.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "formats/criteo_encoding.h"

namespace virga::formats {

inline constexpr int kCriteoTokenChars = 8;

// One drawn row, before formatting.
struct CriteoRow {
  std::array<bool, criteo::kNumIntFields> int_missing;
  std::array<int64_t, criteo::kNumIntFields> ints;  // meaningful when not missing
  std::array<bool, criteo::kNumCatFields> cat_missing;
  std::array<uint32_t, criteo::kNumCatFields> cats;  // written as 8 hex digits

  double logit = 0;        // bias + the weights of the row's 39 features
  double probability = 0;  // sigmoid(logit) = P(label = 1)
  bool label = false;
};

// Writes `token` as kCriteoTokenChars lowercase hex digits (no NUL).
inline void FormatToken(uint32_t token, char* out) {
  static constexpr auto kPairs = [] {  // byte b -> its two hex digits
    std::array<char, 512> t{};
    constexpr char kHex[] = "0123456789abcdef";
    for (int b = 0; b < 256; ++b) {
      t[2 * b] = kHex[b >> 4];
      t[2 * b + 1] = kHex[b & 15];
    }
    return t;
  }();
  for (int k = 0; k < 4; ++k) {
    const uint32_t b = (token >> (24 - 8 * k)) & 0xff;
    out[2 * k] = kPairs[2 * b];
    out[2 * k + 1] = kPairs[2 * b + 1];
  }
}

class CriteoModel {
 public:
  // Builds the Zipf tables and weight caches and solves the bias. Takes
  // ~0.1 s and ~5 MB, whatever the number of rows generated later.
  // `interaction_sd`: the planted pairwise terms' scale; 0 (none) gives the
  // same rows as before the option existed.
  explicit CriteoModel(uint64_t seed, double interaction_sd = 0);

  CriteoModel(const CriteoModel&) = delete;
  CriteoModel& operator=(const CriteoModel&) = delete;

  // Draws row number `row`: a pure function of (seed, row), so any row can
  // be drawn independently, in any order or thread. Thread-safe.
  void Sample(uint64_t row, CriteoRow* out) const;

  // The weights by definition (hash-derived, no tables), for recomputation.
  // IntWeight: field 1..13, `code` = criteo::IntCode(v) or kMissingIntCode.
  // CatWeight: field 14..39, `token` = the field text ("" when missing).
  double IntWeight(int field, int64_t code) const;
  double CatWeight(int field, std::string_view token) const;
  double bias() const { return bias_; }
  // The planted pairwise terms of a row's categorical tokens (0 without
  // interactions); `cats`/`cat_missing` as in CriteoRow.
  double Interactions(const CriteoRow& row) const;

 private:
  // Zipf sampling by Vose's alias method: draw a uniform slot i, keep rank
  // i if a uniform u32 < threshold, else take rank `alias`. Slots are hit
  // uniformly, which misses the cache for big vocabularies, so Draw
  // prefetches them; 16 bytes keep a slot within one cache line.
  struct alignas(16) ZipfSlot {
    uint32_t threshold;
    uint32_t alias;
    float weight;    // CatWeight of rank i's token
    uint32_t token;  // rank i's token, as 8 hex digits
  };
  static constexpr int kIntSlots = 500;  // codes -3..2, 1001..1491, missing

  static int IntSlot(int64_t code);
  // Draws a row's features from the splitmix64 stream at *rng_state
  // (advanced); returns the sum of their weights, without the bias.
  double Draw(uint64_t* rng_state, CriteoRow* out) const;
  void BuildTables();
  void SolveBias();

  const uint64_t seed_;
  const double interaction_sd_;
  double bias_ = 0;
  std::vector<std::vector<ZipfSlot>> zipf_;  // [C field][rank - 1]
  std::array<float, criteo::kNumCatFields> cat_missing_weight_{};
  std::vector<std::array<float, kIntSlots>> int_weight_;  // [I field][slot]
};

}  // namespace virga::formats
