// Ingest: text files -> parsed rows -> train/test split -> partitions in an
// object store + manifest. Streams in constant memory whatever the input size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "virga/object_store.h"
#include "virga/parser.h"
#include "virga/partition.h"
#include "virga/status.h"

namespace virga {

enum class OnError { kFail, kSkip };

// How far an ingest has come (IngestOptions::on_progress).
struct IngestProgress {
  uint64_t rows = 0;
  uint64_t file_bytes = 0;  // bytes of the input files read so far (compressed as stored)
  uint64_t text_bytes = 0;  // uncompressed text bytes parsed so far
};

// Rows per partition object unless told otherwise. 16384 Criteo-like rows are
// ~2 MB stored: large enough that a GET from S3 is worth its ~10 ms and that
// a worker's local rounds and item boundaries (docs/training.md) are rare,
// small enough that a function's prefetch buffers stay a few tens of MB.
// Work items subdivide partitions, so small datasets still spread over workers.
inline constexpr uint32_t kDefaultRowsPerPartition = 16384;

struct IngestOptions {
  Format format = Format::kLibsvm;
  std::vector<std::string> inputs;   // text files: plain, .gz or .zst; local paths or object
                                     // URIs, whose keys may hold wildcards (s3://b/raw/*.gz:
                                     // * ? [..] as fnmatch, never across '/'; sorted)
  std::string dataset;               // output dataset name (must not exist)
  double test_fraction = 0.1;        // share of rows routed to the test split, 0..1
  uint64_t split_seed = 42;          // the split is a deterministic function of this and row number
  uint32_t rows_per_partition = kDefaultRowsPerPartition;
  OnError on_error = OnError::kFail;
  ParseOptions parse;
  PartitionEncodeOptions encode;
  // Lines reported individually on stderr with --on-error skip; beyond this
  // count, skips are still counted (and reported) but not printed one by one.
  uint64_t max_skip_reports = 1000000;
  // Called with "FILE:LINE: reason" for each skipped line (up to
  // max_skip_reports); null prints to stderr.
  std::function<void(const std::string&)> on_skip;
  // Called on the parsing thread about every 64k lines and after each file.
  std::function<void(const IngestProgress&)> on_progress;
};

struct IngestReport {
  std::string dataset;
  uint64_t rows = 0;
  uint64_t train_rows = 0;
  uint64_t test_rows = 0;
  uint64_t partitions = 0;
  uint64_t num_features = 0;
  uint64_t input_bytes = 0;    // uncompressed text bytes
  uint64_t output_bytes = 0;   // encoded partition bytes written
  uint64_t skipped_lines = 0;
  double seconds = 0;
  double mb_per_s() const { return seconds > 0 ? input_bytes / 1e6 / seconds : 0; }
  std::string Summary() const;  // the one-line summary the CLI prints
};

// The split rule: row number `row` (0-based, counting rows, not lines) of an
// ingest goes to the test split iff this returns true. Deterministic in
// (seed, row); true for a `fraction` share of rows on average.
bool InTestSplit(uint64_t seed, uint64_t row, double fraction);

// InvalidArgument when the input holds no row at all (empty files, or only
// blank lines, comments, a header), naming the inputs.
Result<IngestReport> Ingest(ObjectStore& store, const IngestOptions& options);

// The bytes of an input as stored (a local file's size, an object's size):
// with IngestProgress::file_bytes, how far an ingest has come.
Result<uint64_t> InputFileBytes(const std::string& path);

// Ingests rows already in memory instead of text: the same split rule, partitions, statistics
// and manifest as Ingest would make of the same rows parsed from text (row r of `rows` is the
// r-th row). options.inputs only name the source in the manifest (may be empty); parse and
// on_error are unused; options.format is recorded as the manifest's format (kLibsvm: the
// indices are the rows' own, as a LIBSVM file's). Labels and values must be finite
// (InvalidArgument "row R: ..." otherwise). `rows` is only read, never kept.
Result<IngestReport> IngestRows(ObjectStore& store, const IngestOptions& options,
                                const RowBlockView& rows);

}  // namespace virga
