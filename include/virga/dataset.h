// A dataset in an object store: partitions of rows plus a JSON manifest.
//
// Keys (docs/object-layout.md):
//   datasets/<name>/manifest.json       written last: the dataset exists iff it does
//   datasets/<name>/train/part-NNNNN    partition objects (partition.h)
//   datasets/<name>/test/part-NNNNN
// Names are 1..128 bytes of [A-Za-z0-9._-], not starting with '.'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "virga/object_store.h"
#include "virga/status.h"

namespace virga {

struct PartitionInfo {
  std::string key;
  uint64_t rows = 0;
  uint64_t nnz = 0;
  uint64_t bytes = 0;  // encoded object size
};

// Statistics of one feature over the stored entries of the train split
// (implicit zeros of sparse rows are not entries; CSV stores every column,
// so for dense data these are the usual column statistics).
struct FeatureStat {
  uint32_t index = 0;
  uint64_t count = 0;  // stored entries
  double min = 0;
  double max = 0;
  double sum = 0;
  double sum_sq = 0;
  double mean() const { return count ? sum / count : 0; }
  // Population variance (divides by count), clamped at 0.
  double variance() const;
  // Folds `other` (same index) into this.
  void Merge(const FeatureStat& other);
};

// Label summary over all rows (train and test).
struct LabelStat {
  uint64_t count = 0;
  double min = 0;
  double max = 0;
  uint64_t positives = 0;  // rows with label > 0
  // "binary01" (all labels 0 or 1), "binary_pm1" (all -1 or +1), "real".
  std::string kind = "binary01";
};

struct Manifest {
  int version = 1;
  std::string name;
  std::string format;            // libsvm | criteo | csv | ratings
  std::string codec;             // partition codec name
  int hash_bits = 0;             // criteo: bits of the hashed feature space; else 0
  uint64_t num_features = 0;     // all feature indices are < num_features
  double test_fraction = 0;
  uint64_t split_seed = 0;
  uint64_t train_rows = 0;
  uint64_t test_rows = 0;
  uint64_t train_nnz = 0;
  uint64_t test_nnz = 0;
  uint64_t skipped_lines = 0;    // lines skipped with --on-error skip
  uint64_t input_bytes = 0;      // uncompressed text bytes read
  std::vector<std::string> sources;
  std::vector<PartitionInfo> train;
  std::vector<PartitionInfo> test;
  LabelStat label;
  // Stats of numeric features: those with at least one stored value != 1,
  // sorted by index. Binary indicator features are not listed.
  // Up to kInlineFeatureStats of them are written inside the manifest JSON;
  // more go to a binary side object (numeric_features_key, written before
  // the manifest) that ReadManifest loads back, so callers always see them here.
  std::vector<FeatureStat> numeric_features;
  std::string numeric_features_key;  // set by Write/ReadManifest; empty when inline
  std::string derived_from;      // e.g. "normalize(minmax) of NAME"; empty for ingest
  std::string created_at;        // ISO 8601 UTC
};

inline constexpr size_t kInlineFeatureStats = 4096;

Status ValidateDatasetName(std::string_view name);
std::string ManifestKey(std::string_view dataset);
// "datasets/<name>/train/part-00042"
std::string PartitionKey(std::string_view dataset, bool test, uint64_t index);
// Partition `index` of part `part` of an ingest run as one function per part:
// datasets/<name>/{train,test}/part-<part:05>-<index:05>.
std::string PartPartitionKey(std::string_view dataset, bool test, uint64_t part, uint64_t index);

// Binary form of feature statistics (versioned, XXH3-checked); errors name `key`.
std::string EncodeFeatureStats(const std::vector<FeatureStat>& stats);
Result<std::vector<FeatureStat>> DecodeFeatureStats(std::string_view bytes, std::string_view key);

// JSON text of the manifest (stable field names; documented in object-layout.md).
// With a non-empty `stats_key`, numeric_features are not inlined: the JSON
// names that key (the side object WriteManifest writes) instead.
std::string ManifestToJson(const Manifest& manifest, std::string_view stats_key = {});
// Parses manifest JSON; errors name `source` and the offending field.
Result<Manifest> ManifestFromJson(std::string_view json, std::string_view source);

Status WriteManifest(ObjectStore& store, const Manifest& manifest);
// NotFound "dataset 'x' not found in <uri>" when absent.
Result<Manifest> ReadManifest(ObjectStore& store, std::string_view dataset);

// The names of the datasets in `store` (those with a manifest), sorted.
Result<std::vector<std::string>> ListDatasets(ObjectStore& store);

// Removes dataset `name`: its manifest first (from then on it does not
// exist), then every object under its prefix. Also removes what an ingest that
// never committed left there. NotFound when there is neither a manifest nor
// any object. Returns the number of objects removed.
Result<uint64_t> DeleteDataset(ObjectStore& store, std::string_view name);

}  // namespace virga
