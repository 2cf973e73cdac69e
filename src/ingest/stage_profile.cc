#include "ingest/stage_profile.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/feature_stats.h"
#include "ingest/input_glob.h"
#include "ingest/partition_writer.h"
#include "virga/dataset.h"
#include "virga/line_reader.h"
#include "virga/parser.h"

namespace virga::ingest_internal {
namespace {

// Charges the time since the last charge (or construction) to a stage.
class StageTimer {
 public:
  StageTimer() : cpu_(ThreadCpu()), wall_(Wall()) {}
  void ChargeTo(StageCost* stage) {
    const double cpu = ThreadCpu(), wall = Wall();
    stage->cpu += cpu - cpu_;
    stage->wall += wall - wall_;
    cpu_ = cpu;
    wall_ = wall;
  }

 private:
  static double ThreadCpu() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
  }
  static double Wall() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  double cpu_, wall_;
};

Status ReadAll(const std::string& path) {
  VIRGA_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path));
  std::string_view line;
  for (bool more = true; more;) {
    VIRGA_ASSIGN_OR_RETURN(more, reader->Next(&line));
  }
  return Status::OK();
}

}  // namespace

Result<StageProfile> ProfileStages(ObjectStore& store, const IngestOptions& options) {
  StageProfile p;
  VIRGA_ASSIGN_OR_RETURN(const std::vector<std::string> inputs, ExpandInputs(options.inputs));
  for (const std::string& path : inputs) {
    StageTimer timer;
    VIRGA_RETURN_IF_ERROR(ReadAll(path));
    timer.ChargeTo(&p.read);
  }
  FeatureStatsAccumulator stats;
  PausingEncoder encoder(options.encode);
  RowBlock blocks[2];
  std::string encoded;
  Manifest m;
  auto flush = [&](bool test) -> Status {
    RowBlock& b = blocks[test];
    StageTimer timer;
    if (!test) stats.Add(b.view());
    timer.ChargeTo(&p.stats);
    VIRGA_RETURN_IF_ERROR(encoder.Encode(b.view(), &encoded));
    timer.ChargeTo(&p.encode);
    std::vector<PartitionInfo>& parts = test ? m.test : m.train;
    PartitionInfo info;
    info.key = PartitionKey(options.dataset, test, parts.size());
    info.rows = b.rows();
    info.nnz = b.nnz();
    info.bytes = encoded.size();
    VIRGA_RETURN_IF_ERROR(store.Put(info.key, encoded));
    timer.ChargeTo(&p.put);
    parts.push_back(std::move(info));
    (test ? m.test_rows : m.train_rows) += b.rows();
    (test ? m.test_nnz : m.train_nnz) += b.nnz();
    b.Clear();
    return Status::OK();
  };

  StageCost all;  // everything but the read pass and the manifest
  StageTimer timer;
  for (const std::string& path : inputs) {
    VIRGA_ASSIGN_OR_RETURN(auto reader, LineReader::Open(path));
    VIRGA_ASSIGN_OR_RETURN(auto parser, MakeParser(options.format, options.parse));
    std::string_view line;
    while (true) {
      VIRGA_ASSIGN_OR_RETURN(bool more, reader->Next(&line));
      if (!more) break;
      const bool test = InTestSplit(options.split_seed, p.rows, options.test_fraction);
      bool added = false;
      VIRGA_RETURN_IF_ERROR(parser->ParseLine(line, &blocks[test], &added));
      p.rows += added;
      if (blocks[test].rows() >= options.rows_per_partition) VIRGA_RETURN_IF_ERROR(flush(test));
    }
    m.num_features = std::max(m.num_features, parser->index_bound());
  }
  for (bool test : {false, true}) {
    if (blocks[test].rows() > 0) VIRGA_RETURN_IF_ERROR(flush(test));
  }
  timer.ChargeTo(&all);
  p.parse.cpu = all.cpu - p.stats.cpu - p.encode.cpu - p.put.cpu - p.read.cpu;
  p.parse.wall = all.wall - p.stats.wall - p.encode.wall - p.put.wall - p.read.wall;

  m.name = options.dataset;
  m.format = FormatName(options.format);
  m.codec = CodecName(options.encode.codec);
  m.num_features = std::max(m.num_features, stats.index_bound());
  m.test_fraction = options.test_fraction;
  m.split_seed = options.split_seed;
  m.sources = inputs;
  m.numeric_features = stats.NumericStats();
  stats.Release();
  VIRGA_RETURN_IF_ERROR(WriteManifest(store, m));
  timer.ChargeTo(&p.manifest);
  return p;
}

}  // namespace virga::ingest_internal
