// Synthetic data with a known answer: Criteo-format click logs drawn from a
// planted logistic model over the same feature encoding ingest uses, so the
// Bayes-optimal logloss (the floor any learner can reach) is known; and
// ratings drawn from a planted low-rank model with a known RMSE floor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "virga/status.h"

namespace virga {

// How far a generator has come (its options' on_progress): rows and
// uncompressed text bytes written so far. Called on the calling thread.
using GenProgress = std::function<void(uint64_t rows, uint64_t bytes)>;

struct CriteoGenOptions {
  uint64_t rows = 100000;
  uint64_t seed = 1;
  // > 0: planted pairwise interactions between 4 pairs of categorical fields,
  // each adding a term of this standard deviation to the logit (what a
  // factorization machine can learn and a linear model cannot;
  // src/formats/criteo_model.h). 0: none (the rows of earlier versions).
  double interactions = 0;
  std::string out_path;  // ".gz" / ".zst" suffix compresses; "-" is stdout
  GenProgress on_progress;  // optional: after every chunk of rows written
};

struct CriteoGenReport {
  uint64_t rows = 0;
  uint64_t positives = 0;
  uint64_t bytes = 0;                 // bytes of text written (uncompressed)
  double bayes_logloss = 0;           // mean -log p_true(y_i) over the rows written
  double expected_bayes_logloss = 0;  // mean binary entropy H(p_true(x_i))
  double seconds = 0;
};

Result<CriteoGenReport> GenerateCriteo(const CriteoGenOptions& options);

// Ratings from a planted biased low-rank model (the model `mf` fits):
//   rating = mean + b_u + b_i + <p_u, q_i> + noise,   noise ~ N(0, noise^2)
// with b_u ~ N(0, 0.3^2), b_i ~ N(0, 0.4^2) and factors ~ N(0, s^2), s chosen
// so that <p_u, q_i> has standard deviation 0.5 whatever the rank. Users and
// items are drawn uniformly. The ratings are not rounded, so the Bayes floor
// of the test RMSE is `noise`. Lines are "user<TAB>item<TAB>rating" (ingest
// with --format ratings); the same options give the same bytes.
struct RatingsGenOptions {
  uint64_t rows = 100000;
  uint32_t users = 1000;
  uint32_t items = 500;
  uint32_t rank = 8;
  double mean = 3.5;
  double noise = 0.5;
  uint64_t seed = 1;
  std::string out_path;  // ".gz" / ".zst" suffix compresses; "-" is stdout
  GenProgress on_progress;  // optional: after every 64 KiB of text written
};

struct RatingsGenReport {
  uint64_t rows = 0;
  uint64_t bytes = 0;
  double bayes_rmse = 0;     // sqrt(mean noise^2) over the rows written
  double expected_rmse = 0;  // the noise's standard deviation
  double label_stddev = 0;   // of the ratings written (the RMSE of predicting their mean)
  double seconds = 0;
};

Result<RatingsGenReport> GenerateRatings(const RatingsGenOptions& options);

}  // namespace virga
