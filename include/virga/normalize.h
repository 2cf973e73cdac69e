// Normalization of numeric features (min-max or standard scaling) as two
// passes over partitions, each pass over one partition a self-contained step
// that can run as its own worker function:
//   1. statistics: ComputePartitionStats per train partition, reduced with
//      MergeStats;
//   2. transform: TransformPartition per partition (train and test alike,
//      with the train statistics), writing a new dataset.
// Only stored entries are scaled, so sparse rows stay sparse; features that
// are binary (all values 1) are left alone. Scaling math: docs/formats.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/status.h"

namespace virga {

enum class NormalizeMethod { kMinMax, kStandard };
Result<NormalizeMethod> ParseNormalizeMethod(std::string_view name);  // "minmax" | "standard"
const char* NormalizeMethodName(NormalizeMethod method);

// Per-feature statistics of one partition's stored entries, sorted by index;
// only features with a stored value != 1 are kept when `numeric_only`.
Result<std::vector<FeatureStat>> ComputePartitionStats(ObjectStore& store, std::string_view key);

// Merges b into a (both sorted by index); the result stays sorted.
void MergeStats(std::vector<FeatureStat>* a, const std::vector<FeatureStat>& b);

// A fitted scaler: value' = (value - shift[i]) * scale[i] for listed features.
struct Scaler {
  NormalizeMethod method = NormalizeMethod::kMinMax;
  std::vector<uint32_t> index;  // sorted
  std::vector<float> shift;
  std::vector<float> scale;
  static Scaler Fit(NormalizeMethod method, const std::vector<FeatureStat>& stats);
};

// Reads partition `in_key`, scales its values and writes `out_key`.
// Returns the new partition's info.
Result<PartitionInfo> TransformPartition(ObjectStore& store, std::string_view in_key,
                                         std::string_view out_key, const Scaler& scaler);

struct NormalizeOptions {
  std::string dataset;  // input dataset
  std::string out;      // output dataset name (must differ and not exist)
  NormalizeMethod method = NormalizeMethod::kMinMax;
};

struct NormalizeReport {
  uint64_t partitions = 0;
  uint64_t rows = 0;
  uint64_t features_scaled = 0;
  double seconds = 0;
};

// Runs both passes in this process and writes the output manifest last.
Result<NormalizeReport> Normalize(ObjectStore& store, const NormalizeOptions& options);

}  // namespace virga
