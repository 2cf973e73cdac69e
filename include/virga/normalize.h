// Normalization of numeric features (min-max or standard scaling) as two
// passes over partitions, each step over one partition a pure function of
// (store, key(s), small inputs) so that it can run as its own worker function:
//   1. statistics: ComputePartitionStats per TRAIN partition, reduced with
//      MergeStats, then fitted into a Scaler;
//   2. transform: TransformPartition per partition, train and test alike,
//      with the train statistics (fit on train, apply to both).
// Normalize() drives both passes in this process and commits the output
// dataset by writing its manifest last.
//
// Semantics (math and edge cases: docs/normalization.md):
//  - statistics are over the stored entries of the train split (implicit
//    zeros of sparse rows are not entries), so sparse rows stay sparse;
//  - a feature is numeric iff some stored train value differs from 1; only
//    numeric features are scaled, binary indicator features are left alone,
//    and so are features that never occur in the train split;
//  - minmax: v' = (v - min) / (max - min); standard: v' = (v - mean) / std
//    (population std). A constant feature (max == min) maps to 0 under both.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/partition.h"
#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

enum class NormalizeMethod { kMinMax, kStandard };
// "minmax" | "standard"; InvalidArgument naming anything else.
Result<NormalizeMethod> ParseNormalizeMethod(std::string_view name);
const char* NormalizeMethodName(NormalizeMethod method);

// Whether a feature with these statistics is numeric (some value != 1).
inline bool IsNumericFeature(const FeatureStat& s) {
  return s.count > 0 && (s.min != 1.0 || s.max != 1.0);
}

// Buffers reused across partitions so steady-state steps allocate little.
// Optional everywhere: pass nullptr to use call-local buffers. Not thread
// safe: one per thread.
struct NormalizeScratch {
  std::string in_bytes;
  std::string out_bytes;
  PartitionBuffer rows;
  std::vector<float> values;
  std::vector<int32_t> slot;  // feature index -> position in a Scaler
};

// Statistics of every feature stored in `rows` (binary ones included: a
// feature all-1 here may be numeric in another partition, and its 1s count),
// sorted by index, each with count > 0. Memory: O(distinct features).
std::vector<FeatureStat> ComputeRowStats(const RowBlockView& rows);

// Reads and decodes partition `key` and returns ComputeRowStats of its rows.
// Errors (NotFound, Corruption) name the key.
Result<std::vector<FeatureStat>> ComputePartitionStats(ObjectStore& store, std::string_view key,
                                                       NormalizeScratch* scratch = nullptr);

// Folds b into *a (both sorted by index, unique); the result stays sorted.
// Features in both are combined with FeatureStat::Merge.
void MergeStats(std::vector<FeatureStat>* a, const std::vector<FeatureStat>& b);

// A fitted scaler: v' = (v - shift[i]) * scale[i] for the listed features,
// computed in double and stored as float. Other features pass unchanged.
// Small (numeric features only), so it can be shipped to worker functions.
struct Scaler {
  NormalizeMethod method = NormalizeMethod::kMinMax;
  std::vector<uint32_t> index;  // sorted, unique
  std::vector<double> shift;    // same size as index
  std::vector<double> scale;    // same size as index; 0 for a constant feature

  // Fits the numeric features of `stats` (the reduced train statistics;
  // non-numeric entries are skipped). REQUIRES: stats sorted by index.
  static Scaler Fit(NormalizeMethod method, const std::vector<FeatureStat>& stats);
  size_t size() const { return index.size(); }
};

// What one transform step produced.
struct TransformResult {
  PartitionInfo info;  // the written partition: key, rows, nnz, bytes
  // Statistics of the scaled features over the written rows (sorted, only
  // features present in this partition): the reduce input for the output
  // manifest's numeric_features.
  std::vector<FeatureStat> scaled_stats;
};

// Reads partition `in_key`, scales the values of the scaler's features and
// writes the result under `out_key` with `encode`. Labels, offsets and indices
// are unchanged; a binary input stays binary if none of its entries is
// scaled. Errors name the key that failed. Idempotent (same inputs, same
// object), so a step may be retried.
Result<TransformResult> TransformPartition(ObjectStore& store, std::string_view in_key,
                                           std::string_view out_key, const Scaler& scaler,
                                           const PartitionEncodeOptions& encode,
                                           NormalizeScratch* scratch = nullptr);

struct NormalizeOptions {
  std::string dataset;  // input dataset (must exist)
  std::string out;      // output dataset name (must differ from dataset and not exist)
  NormalizeMethod method = NormalizeMethod::kMinMax;
};

struct NormalizeReport {
  uint64_t partitions = 0;       // partitions written (train + test)
  uint64_t rows = 0;             // rows written (train + test)
  uint64_t features_scaled = 0;  // numeric train features the scaler lists
  uint64_t output_bytes = 0;     // encoded partition bytes written
  double seconds = 0;
};

// The commit of a normalization (in process or on functions): the manifest
// of `options.out` (the input's, with these partitions, the numeric ones of
// `scaled_train_stats`, derived_from and created_at), written last, and the
// report (`start`: when the normalization began).
Result<NormalizeReport> CommitNormalized(ObjectStore& store, const Manifest& in,
                                         const NormalizeOptions& options,
                                         std::vector<PartitionInfo> train,
                                         std::vector<PartitionInfo> test,
                                         const std::vector<FeatureStat>& scaled_train_stats,
                                         size_t features_scaled,
                                         std::chrono::steady_clock::time_point start);

// Runs both passes in this process. The output dataset keeps the input's
// partition structure and codec; its manifest is the input's with new
// partition keys and sizes, `derived_from` = "normalize(METHOD) of NAME",
// numeric_features recomputed over the transformed train split and a new
// created_at. The manifest is written last; on any failure it is not written
// and the partitions written so far are deleted (best effort).
// Refuses: out == dataset (InvalidArgument), out exists (AlreadyExists),
// dataset missing (NotFound naming it).
Result<NormalizeReport> Normalize(ObjectStore& store, const NormalizeOptions& options);

}  // namespace virga
