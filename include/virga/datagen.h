// Synthetic data with a known answer: Criteo-format click logs drawn from a
// planted logistic model over the same feature encoding ingest uses, so the
// Bayes-optimal logloss (the floor any learner can reach) is known.
#pragma once

#include <cstdint>
#include <string>

#include "virga/status.h"

namespace virga {

struct CriteoGenOptions {
  uint64_t rows = 100000;
  uint64_t seed = 1;
  std::string out_path;  // ".gz" / ".zst" suffix compresses; "-" is stdout
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

}  // namespace virga
