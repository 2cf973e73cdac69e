// The pieces of an ingest, so that it can run in one process (Ingest) or as
// one function per part of the input with one commit at the end
// (src/stage/stage_ingest.cc). Not public API.
//
// A part is a list of input ranges (whole files, or byte ranges of
// uncompressed ones). Its rows are routed to the test split by
// InTestSplit(seed, SplitRowKey(part, row in part)); its partitions are named
// PartPartitionKey(dataset, test, part, i), or PartitionKey(dataset, test, i)
// for the single part of an in-process ingest (part -1), whose row keys are
// the row numbers of the whole input: the two forms agree for one part.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/object_store.h"

namespace virga::ingest_internal {

struct InputRange {
  std::string path;    // local path or object URI
  uint64_t begin = 0;  // byte range [begin, end) of an uncompressed file (LineReaderOptions)
  uint64_t end = 0;    // 0: to the end
};

inline uint64_t SplitRowKey(int64_t part, uint64_t row) {
  return part <= 0 ? row : (static_cast<uint64_t>(part) << 40) + row;
}

// What one part produced (or, merged, a whole ingest).
struct PartOutput {
  uint64_t rows = 0, train_rows = 0, test_rows = 0;
  uint64_t skipped_lines = 0;
  uint64_t input_bytes = 0;   // uncompressed text bytes
  uint64_t output_bytes = 0;  // encoded partition bytes
  uint64_t index_bound = 0;   // every feature index is below this
  LabelStat labels;           // kind is set from the two flags below by FinishLabels
  bool labels_01 = true, labels_pm1 = true;
  std::vector<PartitionInfo> train, test;
  std::vector<FeatureStat> numeric;  // train split, numeric features, sorted
  // Train split's binary features (index, entries), sorted; parts only (part >= 0).
  std::vector<std::pair<uint32_t, uint64_t>> binary_counts;
};

// The option checks of every ingest (dataset name, fractions, hash bits).
Status CheckIngestOptions(const IngestOptions& options);

// Parses `ranges` in order into partitions of part `part` (-1: the whole
// input of an in-process ingest). Writes partitions only, never the
// manifest; on failure the partitions written stay (the caller removes the
// dataset's objects). Parse errors name FILE:LINE (or FILE at byte B for a range).
Result<PartOutput> IngestPart(ObjectStore& store, const IngestOptions& options,
                              std::span<const InputRange> ranges, int64_t part);

// Folds `b` (a later part) into `a`: counts added, partitions appended,
// numeric statistics merged exactly (a feature numeric in one part and binary
// in another gets the other's entries of 1 through binary_counts).
void MergePart(PartOutput* a, PartOutput&& b);

// The statistics merge of MergePart: (numeric, binary counts) of b folded
// into a's. Both pairs sorted by index; a feature is in one list of a pair.
void MergeStatsPieces(std::vector<FeatureStat>* numeric_a,
                      std::vector<std::pair<uint32_t, uint64_t>>* binary_a,
                      std::vector<FeatureStat>&& numeric_b,
                      std::vector<std::pair<uint32_t, uint64_t>>&& binary_b);

// Writes the manifest of `out` (the commit point) and fills *report.
Status CommitManifest(ObjectStore& store, const IngestOptions& options,
                      const std::vector<std::string>& sources, PartOutput& out,
                      IngestReport* report);

// InvalidArgument: the inputs (named, the first three) hold no row.
Status NoRows(const std::vector<std::string>& inputs);

// Best-effort removal of every object under the dataset's prefix.
void RemoveDatasetObjects(ObjectStore& store, const std::string& dataset);

// AlreadyExists if the dataset has a manifest; then removes what an ingest
// that never committed left under its prefix.
Status PrepareNewDataset(ObjectStore& store, const std::string& dataset);

}  // namespace virga::ingest_internal
