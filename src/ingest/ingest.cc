// Ingest pipeline. The calling thread reads and parses lines into RowBlocks
// (one being filled per split); full blocks go to the PartitionWriter
// (partition_writer.h), which folds them into the statistics, encodes and
// stores them on its own threads, then recycles them. Memory is bounded by
// the block pool and the statistics whatever the input size. The manifest is
// written last, so a failed ingest leaves no dataset (its partitions are
// deleted, best-effort).
#include "common/time_format.h"
#include "virga/ingest.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "ingest/ingest_part.h"
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

namespace ingest_internal {

Status CheckIngestOptions(const IngestOptions& o) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(o.dataset));
  if (!(o.test_fraction >= 0 && o.test_fraction <= 1))
    return Status::InvalidArgument(fmt::format("--test-fraction {} is not in [0, 1]", o.test_fraction));
  if (o.rows_per_partition == 0)
    return Status::InvalidArgument("--rows-per-partition must be at least 1");
  if (o.parse.hash_bits < 1 || o.parse.hash_bits > 32)
    return Status::InvalidArgument(fmt::format("--hash-bits {} is not in [1, 32]", o.parse.hash_bits));
  return Status::OK();
}

void RemoveDatasetObjects(ObjectStore& store, const std::string& dataset) {
  auto listed = store.List("datasets/" + dataset + "/");
  if (!listed.ok()) return;
  for (const ObjectInfo& o : *listed) (void)store.Delete(o.key);
}

Status PrepareNewDataset(ObjectStore& store, const std::string& dataset) {
  VIRGA_ASSIGN_OR_RETURN(bool exists, store.Exists(ManifestKey(dataset)));
  if (exists) {
    return Status::AlreadyExists(fmt::format("dataset '{}' already exists in {}", dataset,
                                             store.uri()));
  }
  RemoveDatasetObjects(store, dataset);  // leftovers of an ingest that never committed
  return Status::OK();
}

namespace {

// What a finished writer holds, into *out (whose row counts the caller set).
void TakeWriterOutput(PartitionWriter& writer, uint64_t index_bound, PartOutput* out) {
  out->index_bound = std::max({index_bound, writer.train_index_bound(), writer.test_index_bound()});
  out->labels = writer.labels();
  out->labels_01 = writer.labels_01();
  out->labels_pm1 = writer.labels_pm1();
  out->train = std::move(writer.parts(false));
  out->test = std::move(writer.parts(true));
  out->numeric = std::move(writer.numeric_stats());
  out->binary_counts = std::move(writer.binary_counts());
  out->output_bytes = writer.output_bytes();
}

}  // namespace

Result<PartOutput> IngestPart(ObjectStore& store, const IngestOptions& options,
                              std::span<const InputRange> ranges, int64_t part) {
  PartOutput out;
  uint64_t index_bound = 0;
  Status status;
  // Data whose values are all 1 (Criteo) has no numeric feature: no statistics.
  bool statistics = true;
  if (auto probe = MakeParser(options.format, options.parse); probe.ok())
    statistics = !(*probe)->values_are_ones();
  PartitionWriter writer(store, options, part, /*binary_counts=*/part >= 0, statistics);
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

  uint64_t file_bytes_done = 0, text_bytes_done = 0, lines = 0;
  auto progress = [&](const LineReader& r) {
    if (options.on_progress) {
      options.on_progress({out.rows, file_bytes_done + r.file_bytes_read(),
                           text_bytes_done + r.text_bytes_read()});
    }
  };
  for (const InputRange& range : ranges) {
    if (!status.ok()) break;
    LineReaderOptions lo;
    lo.range_begin = range.begin;
    lo.range_end = range.end;
    auto reader = LineReader::Open(range.path, lo);
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
      if ((++lines & 0xffff) == 0) progress(**reader);
      const bool test =
          InTestSplit(options.split_seed, SplitRowKey(part, out.rows), options.test_fraction);
      RowBlock& rows = filling[test]->rows;
      bool added = false;
      Status s = (*parser)->ParseLine(line, &rows, &added);
      if (!s.ok()) {
        std::string where = fmt::format("{}: {}", (*reader)->Where(), s.message());
        if (options.on_error == OnError::kFail) {
          status = Status::InvalidArgument(std::move(where));
          break;
        }
        if (out.skipped_lines++ < options.max_skip_reports) {
          if (options.on_skip) options.on_skip(where);
          else std::fprintf(stderr, "%s (line skipped)\n", where.c_str());
        }
        continue;
      }
      if (!added) continue;
      ++out.rows;
      (test ? out.test_rows : out.train_rows)++;
      if ((rows.rows() >= options.rows_per_partition || rows.nnz() >= kMaxBlockNnz) &&
          !flush(test)) {
        status = Status::Internal("partition writer stopped");  // replaced by its fault below
        break;
      }
    }
    out.input_bytes += (*reader)->text_bytes_read();
    progress(**reader);
    file_bytes_done += (*reader)->file_bytes_read();
    text_bytes_done += (*reader)->text_bytes_read();
  }
  for (bool test : {false, true}) {
    if (status.ok() && filling[test] && filling[test]->rows.rows() > 0) flush(test);
    filling[test].reset();
  }
  Status ws = writer.Finish();
  if (!ws.ok()) status = ws;
  VIRGA_RETURN_IF_ERROR(status);
  TakeWriterOutput(writer, index_bound, &out);
  return out;
}

namespace {

FeatureStat OnesStat(uint32_t index, uint64_t count) {
  FeatureStat s;
  s.index = index;
  s.count = count;
  s.min = s.max = 1;
  s.sum = s.sum_sq = static_cast<double>(count);
  return s;
}

}  // namespace

void MergeStatsPieces(std::vector<FeatureStat>* numeric_a,
                      std::vector<std::pair<uint32_t, uint64_t>>* binary_a,
                      std::vector<FeatureStat>&& numeric_b,
                      std::vector<std::pair<uint32_t, uint64_t>>&& binary_b) {
  // Numeric statistics: sorted merge of both lists.
  std::vector<FeatureStat> numeric;
  numeric.reserve((*numeric_a).size() + numeric_b.size());
  {
    size_t i = 0, j = 0;
    while (i < (*numeric_a).size() || j < numeric_b.size()) {
      if (j == numeric_b.size() ||
          (i < (*numeric_a).size() && (*numeric_a)[i].index < numeric_b[j].index)) {
        numeric.push_back((*numeric_a)[i++]);
      } else if (i == (*numeric_a).size() || numeric_b[j].index < (*numeric_a)[i].index) {
        numeric.push_back(numeric_b[j++]);
      } else {
        numeric.push_back((*numeric_a)[i++]);
        numeric.back().Merge(numeric_b[j++]);
      }
    }
  }
  // Binary counts: summed; a feature now numeric takes its entries of 1 in.
  std::vector<std::pair<uint32_t, uint64_t>> binary;
  binary.reserve(std::max((*binary_a).size(), binary_b.size()));
  auto take = [&](uint32_t index, uint64_t count) {
    auto it = std::lower_bound(numeric.begin(), numeric.end(), index,
                               [](const FeatureStat& f, uint32_t k) { return f.index < k; });
    if (it != numeric.end() && it->index == index) {
      it->Merge(OnesStat(index, count));
    } else if (!binary.empty() && binary.back().first == index) {
      binary.back().second += count;
    } else {
      binary.emplace_back(index, count);
    }
  };
  {
    const auto& x = (*binary_a);
    const auto& y = binary_b;
    size_t i = 0, j = 0;
    while (i < x.size() || j < y.size()) {
      if (j == y.size() || (i < x.size() && x[i].first <= y[j].first)) {
        take(x[i].first, x[i].second);
        ++i;
      } else {
        take(y[j].first, y[j].second);
        ++j;
      }
    }
  }
  *numeric_a = std::move(numeric);
  *binary_a = std::move(binary);
}


void MergePart(PartOutput* a, PartOutput&& b) {
  if (b.labels.count > 0) {
    if (a->labels.count == 0) {
      a->labels.min = b.labels.min;
      a->labels.max = b.labels.max;
    }
    a->labels.min = std::min(a->labels.min, b.labels.min);
    a->labels.max = std::max(a->labels.max, b.labels.max);
    a->labels.count += b.labels.count;
    a->labels.positives += b.labels.positives;
  }
  a->labels_01 = a->labels_01 && b.labels_01;
  a->labels_pm1 = a->labels_pm1 && b.labels_pm1;
  a->labels.kind = a->labels_01 ? "binary01" : a->labels_pm1 ? "binary_pm1" : "real";
  a->rows += b.rows;
  a->train_rows += b.train_rows;
  a->test_rows += b.test_rows;
  a->skipped_lines += b.skipped_lines;
  a->input_bytes += b.input_bytes;
  a->output_bytes += b.output_bytes;
  a->index_bound = std::max(a->index_bound, b.index_bound);
  for (auto& p : b.train) a->train.push_back(std::move(p));
  for (auto& p : b.test) a->test.push_back(std::move(p));

  MergeStatsPieces(&a->numeric, &a->binary_counts, std::move(b.numeric), std::move(b.binary_counts));
}

Status CommitManifest(ObjectStore& store, const IngestOptions& options,
                      const std::vector<std::string>& sources, PartOutput& out,
                      IngestReport* report) {
  Manifest m;
  m.name = options.dataset;
  m.format = FormatName(options.format);
  m.codec = CodecName(options.encode.codec);
  m.hash_bits = options.format == Format::kCriteo ? options.parse.hash_bits : 0;
  m.num_features = out.index_bound;
  m.test_fraction = options.test_fraction;
  m.split_seed = options.split_seed;
  m.train_rows = out.train_rows;
  m.test_rows = out.test_rows;
  m.train = std::move(out.train);
  m.test = std::move(out.test);
  for (const auto& p : m.train) m.train_nnz += p.nnz;
  for (const auto& p : m.test) m.test_nnz += p.nnz;
  m.skipped_lines = out.skipped_lines;
  m.input_bytes = out.input_bytes;
  m.sources = sources;
  m.label = out.labels;
  m.numeric_features = std::move(out.numeric);
  m.created_at = UtcNowIso8601();
  report->dataset = options.dataset;
  report->rows = out.rows;
  report->train_rows = out.train_rows;
  report->test_rows = out.test_rows;
  report->skipped_lines = out.skipped_lines;
  report->input_bytes = out.input_bytes;
  report->partitions = m.train.size() + m.test.size();
  report->num_features = m.num_features;
  report->output_bytes = out.output_bytes;
  return WriteManifest(store, m);
}

Status NoRows(const std::vector<std::string>& inputs) {
  std::string names;
  for (size_t i = 0; i < inputs.size() && i < 3; ++i) names += (i ? ", " : "") + inputs[i];
  if (inputs.size() > 3) names += fmt::format(" and {} more", inputs.size() - 3);
  return Status::InvalidArgument(fmt::format(
      "no rows in the input ({}): empty, or only blank lines, comments or a header", names));
}

}  // namespace ingest_internal

Result<uint64_t> InputFileBytes(const std::string& path) {
  if (IsObjectUri(path) && !std::string_view(path).starts_with("file://")) {
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(path));
    VIRGA_ASSIGN_OR_RETURN(ObjectInfo info, ref.store->Stat(ref.key));
    return info.size;
  }
  std::string_view local = path;
  if (local.starts_with("file://")) local.remove_prefix(7);
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(std::string(local), ec);
  if (ec) return Status::NotFound(path + ": " + ec.message());
  return size;
}

std::string IngestReport::Summary() const {
  return fmt::format(
      "ingested {}: {} rows ({} train, {} test) in {} partitions, {} features, "
      "{:.1f} MB in -> {:.1f} MB out, {:.2f} s, {:.1f} MB/s, {} skipped lines",
      dataset, rows, train_rows, test_rows, partitions, num_features, input_bytes / 1e6,
      output_bytes / 1e6, seconds, mb_per_s(), skipped_lines);
}

Result<IngestReport> Ingest(ObjectStore& store, const IngestOptions& options) {
  using namespace ingest_internal;
  VIRGA_RETURN_IF_ERROR(CheckIngestOptions(options));
  if (options.inputs.empty()) return Status::InvalidArgument("no input files given");
  const auto start = std::chrono::steady_clock::now();
  VIRGA_ASSIGN_OR_RETURN(const std::vector<std::string> inputs, ExpandInputs(options.inputs));
  VIRGA_RETURN_IF_ERROR(PrepareNewDataset(store, options.dataset));
  std::vector<InputRange> ranges;
  for (const std::string& path : inputs) ranges.push_back({path, 0, 0});
  IngestReport report;
  report.dataset = options.dataset;
  Result<PartOutput> out = IngestPart(store, options, ranges, /*part=*/-1);
  Status status = out.status();
  if (status.ok() && out->rows == 0) status = NoRows(inputs);
  if (status.ok()) status = CommitManifest(store, options, inputs, *out, &report);
  if (!status.ok()) {
    RemoveDatasetObjects(store, options.dataset);
    return status;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Result<IngestReport> IngestRows(ObjectStore& store, const IngestOptions& options,
                                const RowBlockView& rows) {
  using namespace ingest_internal;
  VIRGA_RETURN_IF_ERROR(CheckIngestOptions(options));
  // The same label rule as text input's parsers (options.parse.task, classes).
  VIRGA_ASSIGN_OR_RETURN(LabelCheck labels, LabelCheck::Make(options.parse));
  const auto start = std::chrono::steady_clock::now();
  VIRGA_RETURN_IF_ERROR(PrepareNewDataset(store, options.dataset));
  IngestReport report;
  report.dataset = options.dataset;
  PartOutput out;
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
      if (Status s = labels.Check(rows.labels[r]); !s.ok()) {
        status = Status::InvalidArgument(fmt::format("row {}: {}", r, s.message()));
        break;
      }
      const bool test = InTestSplit(options.split_seed, out.rows, options.test_fraction);
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
      ++out.rows;
      (test ? out.test_rows : out.train_rows)++;
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
    if (status.ok()) TakeWriterOutput(writer, 0, &out);
  }
  if (status.ok()) status = CommitManifest(store, options, options.inputs, out, &report);
  if (!status.ok()) {
    RemoveDatasetObjects(store, options.dataset);
    return status;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace virga
