// Ingest pipeline. The calling thread reads and parses lines into RowBlocks
// (one being filled per split); full blocks go to the PartitionWriter
// (partition_writer.h), which folds them into the statistics, encodes and
// stores them on its own threads, then recycles them. Memory is bounded by
// the block pool and the statistics whatever the input size. The manifest is
// written last, so a failed ingest leaves no dataset (its partitions are
// deleted, best-effort). IngestRows feeds rows already in memory to the same
// writer and manifest instead of parsed lines.
#include "common/time_format.h"
#include "virga/ingest.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "ingest/input_glob.h"
#include "ingest/partition_writer.h"
#include "virga/dataset.h"
#include "virga/line_reader.h"

namespace virga {
namespace {

using ingest_internal::Block;
using ingest_internal::PartitionWriter;

constexpr uint64_t kMaxBlockNnz = 1ull << 31;

}  // namespace

// A row goes to test iff a splitmix64 hash of (seed, row) falls below the
// fraction.
bool InTestSplit(uint64_t seed, uint64_t row, double fraction) {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (row + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53 < fraction;
}

namespace {

// The options both entry points share (Ingest also needs inputs).
Status CheckOptions(const IngestOptions& o) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(o.dataset));
  if (!(o.test_fraction >= 0 && o.test_fraction <= 1))
    return Status::InvalidArgument(fmt::format("--test-fraction {} is not in [0, 1]", o.test_fraction));
  if (o.rows_per_partition == 0)
    return Status::InvalidArgument("--rows-per-partition must be at least 1");
  if (o.parse.hash_bits < 1 || o.parse.hash_bits > 32)
    return Status::InvalidArgument(fmt::format("--hash-bits {} is not in [1, 32]", o.parse.hash_bits));
  return Status::OK();
}

// Best-effort removal of every object under the dataset's prefix.
void RemoveObjects(ObjectStore& store, const std::string& dataset) {
  auto listed = store.List("datasets/" + dataset + "/");
  if (!listed.ok()) return;
  for (const ObjectInfo& o : *listed) (void)store.Delete(o.key);
}

// AlreadyExists if the dataset is there; else clears leftovers of an ingest that never
// committed.
Status PrepareDataset(ObjectStore& store, const std::string& dataset) {
  VIRGA_ASSIGN_OR_RETURN(bool exists, store.Exists(ManifestKey(dataset)));
  if (exists) {
    return Status::AlreadyExists(fmt::format("dataset '{}' already exists in {}", dataset,
                                             store.uri()));
  }
  RemoveObjects(store, dataset);
  return Status::OK();
}

// The manifest of an ingest whose partitions are all stored (writer finished OK), written
// last: the dataset exists from then on. Fills the report's partition/feature/byte counts.
Status CommitManifest(ObjectStore& store, const IngestOptions& options, PartitionWriter& writer,
                      uint64_t index_bound, std::vector<std::string> sources,
                      IngestReport* report) {
  Manifest m;
  m.name = options.dataset;
  m.format = FormatName(options.format);
  m.codec = CodecName(options.encode.codec);
  m.hash_bits = options.format == Format::kCriteo ? options.parse.hash_bits : 0;
  m.num_features = std::max({index_bound, writer.train_index_bound(), writer.test_index_bound()});
  m.test_fraction = options.test_fraction;
  m.split_seed = options.split_seed;
  m.train_rows = report->train_rows;
  m.test_rows = report->test_rows;
  m.train = std::move(writer.parts(false));
  m.test = std::move(writer.parts(true));
  for (const auto& p : m.train) m.train_nnz += p.nnz;
  for (const auto& p : m.test) m.test_nnz += p.nnz;
  m.skipped_lines = report->skipped_lines;
  m.input_bytes = report->input_bytes;
  m.sources = std::move(sources);
  m.label = writer.labels();
  m.numeric_features = std::move(writer.numeric_stats());
  m.created_at = UtcNowIso8601();
  report->partitions = m.train.size() + m.test.size();
  report->num_features = m.num_features;
  report->output_bytes = writer.output_bytes();
  return WriteManifest(store, m);
}

}  // namespace

std::string IngestReport::Summary() const {
  return fmt::format(
      "ingested {}: {} rows ({} train, {} test) in {} partitions, {} features, "
      "{:.1f} MB in -> {:.1f} MB out, {:.2f} s, {:.1f} MB/s, {} skipped lines",
      dataset, rows, train_rows, test_rows, partitions, num_features, input_bytes / 1e6,
      output_bytes / 1e6, seconds, mb_per_s(), skipped_lines);
}

Result<IngestReport> Ingest(ObjectStore& store, const IngestOptions& options) {
  VIRGA_RETURN_IF_ERROR(CheckOptions(options));
  if (options.inputs.empty()) return Status::InvalidArgument("no input files given");
  const auto start = std::chrono::steady_clock::now();
  VIRGA_ASSIGN_OR_RETURN(const std::vector<std::string> inputs,
                         ingest_internal::ExpandInputs(options.inputs));
  VIRGA_RETURN_IF_ERROR(PrepareDataset(store, options.dataset));

  IngestReport report;
  report.dataset = options.dataset;
  uint64_t index_bound = 0;
  Status status;
  {
    PartitionWriter writer(store, options);
    std::unique_ptr<Block> filling[2] = {writer.Acquire(), writer.Acquire()};
    filling[1]->test = true;
    auto flush = [&](bool test) {
      std::unique_ptr<Block>& b = filling[test];
      if (!writer.Submit(std::move(b))) return false;
      b = writer.Acquire();
      if (!b) return false;
      b->test = test;
      return true;
    };

    for (const std::string& path : inputs) {
      if (!status.ok()) break;
      auto reader = LineReader::Open(path);
      if (!reader.ok()) {
        status = reader.status();
        break;
      }
      auto parser = MakeParser(options.format, options.parse);
      if (!parser.ok()) {
        status = parser.status();
        break;
      }
      index_bound = std::max(index_bound, (*parser)->index_bound());
      std::string_view line;
      while (true) {
        Result<bool> more = (*reader)->Next(&line);
        if (!more.ok()) {
          status = more.status();
          break;
        }
        if (!*more) break;
        const bool test = InTestSplit(options.split_seed, report.rows, options.test_fraction);
        RowBlock& rows = filling[test]->rows;
        bool added = false;
        Status s = (*parser)->ParseLine(line, &rows, &added);
        if (!s.ok()) {
          std::string where = fmt::format("{}:{}: {}", path, (*reader)->line_number(), s.message());
          if (options.on_error == OnError::kFail) {
            status = Status::InvalidArgument(std::move(where));
            break;
          }
          if (report.skipped_lines++ < options.max_skip_reports) {
            if (options.on_skip) options.on_skip(where);
            else std::fprintf(stderr, "%s (line skipped)\n", where.c_str());
          }
          continue;
        }
        if (!added) continue;
        ++report.rows;
        (test ? report.test_rows : report.train_rows)++;
        if ((rows.rows() >= options.rows_per_partition || rows.nnz() >= kMaxBlockNnz) &&
            !flush(test)) {
          status = Status::Internal("partition writer stopped");  // replaced by its fault below
          break;
        }
      }
      report.input_bytes += (*reader)->text_bytes_read();
    }
    for (bool test : {false, true}) {
      if (status.ok() && filling[test] && filling[test]->rows.rows() > 0) flush(test);
      filling[test].reset();
    }
    Status ws = writer.Finish();
    if (!ws.ok()) status = ws;
    if (status.ok()) status = CommitManifest(store, options, writer, index_bound, inputs, &report);
  }
  if (!status.ok()) {
    RemoveObjects(store, options.dataset);
    return status;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Result<IngestReport> IngestRows(ObjectStore& store, const IngestOptions& options,
                                const RowBlockView& rows) {
  VIRGA_RETURN_IF_ERROR(CheckOptions(options));
  const auto start = std::chrono::steady_clock::now();
  VIRGA_RETURN_IF_ERROR(PrepareDataset(store, options.dataset));
  IngestReport report;
  report.dataset = options.dataset;
  Status status;
  {
    PartitionWriter writer(store, options);
    std::unique_ptr<Block> filling[2] = {writer.Acquire(), writer.Acquire()};
    filling[1]->test = true;
    for (size_t r = 0; r < rows.rows() && status.ok(); ++r) {
      if (!std::isfinite(rows.labels[r])) {
        status = Status::InvalidArgument(fmt::format("row {}: label is not finite", r));
        break;
      }
      const bool test = InTestSplit(options.split_seed, report.rows, options.test_fraction);
      RowBlock& block = filling[test]->rows;
      for (size_t p = rows.offsets[r]; p < rows.offsets[r + 1]; ++p) {
        const float v = rows.value(p);
        if (!std::isfinite(v)) {
          status = Status::InvalidArgument(fmt::format("row {}: value is not finite", r));
          break;
        }
        block.AddFeature(rows.indices[p], v);
      }
      if (!status.ok()) break;
      block.EndRow(rows.labels[r]);
      ++report.rows;
      (test ? report.test_rows : report.train_rows)++;
      if (block.rows() >= options.rows_per_partition || block.nnz() >= kMaxBlockNnz) {
        if (!writer.Submit(std::move(filling[test])) || !(filling[test] = writer.Acquire())) {
          status = Status::Internal("partition writer stopped");  // replaced by its fault below
          break;
        }
        filling[test]->test = test;
      }
    }
    for (bool test : {false, true}) {
      if (status.ok() && filling[test] && filling[test]->rows.rows() > 0) {
        writer.Submit(std::move(filling[test]));
      }
      filling[test].reset();
    }
    Status ws = writer.Finish();
    if (!ws.ok()) status = ws;
    if (status.ok()) status = CommitManifest(store, options, writer, 0, options.inputs, &report);
  }
  if (!status.ok()) {
    RemoveObjects(store, options.dataset);
    return status;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace virga
