// Normalize(): the in-process driver of the two normalization passes. Each
// per-partition step is a call that a worker function could make instead;
// this file owns only the ordering, the reduce and the commit.
#include "virga/normalize.h"

#include "common/time_format.h"

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

namespace virga {

namespace {

Status CheckNames(ObjectStore& store, const NormalizeOptions& options) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(options.dataset));
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(options.out));
  if (options.out == options.dataset) {
    return Status::InvalidArgument("output dataset '" + options.out +
                                   "' is the input dataset; choose a new name");
  }
  VIRGA_ASSIGN_OR_RETURN(bool exists, store.Exists(ManifestKey(options.out)));
  if (exists) {
    return Status::AlreadyExists("dataset '" + options.out + "' already exists in " + store.uri());
  }
  return Status::OK();
}

// Pass 1: statistics of every train partition, reduced, then fitted.
Result<Scaler> FitTrain(ObjectStore& store, const Manifest& in, NormalizeMethod method,
                        NormalizeScratch* scratch) {
  std::vector<FeatureStat> total;
  for (const PartitionInfo& p : in.train) {
    VIRGA_ASSIGN_OR_RETURN(std::vector<FeatureStat> stats,
                           ComputePartitionStats(store, p.key, scratch));
    MergeStats(&total, stats);
  }
  return Scaler::Fit(method, total);
}

// Writes one split's partitions; appends their infos to *out and merges the
// scaled statistics of train partitions into *train_stats.
Status TransformSplit(ObjectStore& store, const std::vector<PartitionInfo>& parts, bool test,
                      const std::string& out_name, const Scaler& scaler,
                      const PartitionEncodeOptions& encode, NormalizeScratch* scratch,
                      std::vector<PartitionInfo>* out, std::vector<FeatureStat>* train_stats) {
  for (size_t i = 0; i < parts.size(); ++i) {
    const PartitionInfo& p = parts[i];
    VIRGA_ASSIGN_OR_RETURN(
        TransformResult r,
        TransformPartition(store, p.key, PartitionKey(out_name, test, i), scaler, encode, scratch));
    out->push_back(r.info);
    if (r.info.rows != p.rows || r.info.nnz != p.nnz) {
      return Status::Corruption(p.key + ": manifest lists " + std::to_string(p.rows) + " rows, " +
                                std::to_string(p.nnz) + " entries; partition holds " +
                                std::to_string(r.info.rows) + " rows, " +
                                std::to_string(r.info.nnz) + " entries");
    }
    if (!test) MergeStats(train_stats, r.scaled_stats);
  }
  return Status::OK();
}

// Both passes and the commit; on failure *written lists the partition keys
// that were written so the caller can remove them.
Result<NormalizeReport> Run(ObjectStore& store, const NormalizeOptions& options,
                            std::vector<PartitionInfo>* written) {
  const auto start = std::chrono::steady_clock::now();
  VIRGA_RETURN_IF_ERROR(CheckNames(store, options));
  VIRGA_ASSIGN_OR_RETURN(Manifest in, ReadManifest(store, options.dataset));
  PartitionEncodeOptions encode;
  Result<Codec> codec = ParseCodecName(in.codec);
  if (!codec.ok()) return codec.status().WithContext(ManifestKey(options.dataset));
  encode.codec = *codec;

  NormalizeScratch scratch;
  VIRGA_ASSIGN_OR_RETURN(Scaler scaler, FitTrain(store, in, options.method, &scratch));

  std::vector<FeatureStat> train_stats;
  std::vector<PartitionInfo> train, test;
  Status s = TransformSplit(store, in.train, false, options.out, scaler, encode, &scratch, &train,
                            &train_stats);
  if (s.ok()) {
    s = TransformSplit(store, in.test, true, options.out, scaler, encode, &scratch, &test, nullptr);
  }
  written->insert(written->end(), train.begin(), train.end());
  written->insert(written->end(), test.begin(), test.end());
  VIRGA_RETURN_IF_ERROR(s);

  return CommitNormalized(store, in, options, std::move(train), std::move(test), train_stats,
                          scaler.size(), start);
}

}  // namespace

Result<NormalizeReport> CommitNormalized(ObjectStore& store, const Manifest& in,
                                         const NormalizeOptions& options,
                                         std::vector<PartitionInfo> train,
                                         std::vector<PartitionInfo> test,
                                         const std::vector<FeatureStat>& scaled_train_stats,
                                         size_t features_scaled,
                                         std::chrono::steady_clock::time_point start) {
  Manifest out = in;
  out.name = options.out;
  out.train = std::move(train);
  out.test = std::move(test);
  out.numeric_features.clear();
  for (const FeatureStat& f : scaled_train_stats) {
    if (IsNumericFeature(f)) out.numeric_features.push_back(f);
  }
  out.derived_from =
      std::string("normalize(") + NormalizeMethodName(options.method) + ") of " + options.dataset;
  out.created_at = UtcNowIso8601();
  VIRGA_RETURN_IF_ERROR(WriteManifest(store, out));  // the commit point

  NormalizeReport report;
  report.partitions = out.train.size() + out.test.size();
  report.features_scaled = features_scaled;
  for (const auto* split : {&out.train, &out.test}) {
    for (const PartitionInfo& p : *split) {
      report.rows += p.rows;
      report.output_bytes += p.bytes;
    }
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Result<NormalizeReport> Normalize(ObjectStore& store, const NormalizeOptions& options) {
  std::vector<PartitionInfo> written;
  Result<NormalizeReport> r = Run(store, options, &written);
  if (r.ok()) return r;
  // Best effort: the output has no manifest, so it does not exist; remove the
  // orphaned partitions too. A failed delete leaves garbage, not a dataset.
  for (const PartitionInfo& p : written) (void)store.Delete(p.key);
  return r.status().WithContext("normalize(" + std::string(NormalizeMethodName(options.method)) +
                                ") of '" + options.dataset + "' into '" + options.out + "'");
}

}  // namespace virga
