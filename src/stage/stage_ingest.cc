// IngestOnFunctions (include/virga/stage.h) and its task, "ingest_part": one
// part of the input (whole files or byte ranges) parsed into partitions by
// ingest_internal::IngestPart; the driver merges the parts' outputs and
// writes the one manifest.

#include <fmt/format.h>

#include "ingest/ingest_part.h"
#include "ingest/input_glob.h"
#include "stage/stage_runner.h"
#include "stage/stats_piece.h"
#include "stage/task_kinds.h"
#include "virga/line_reader.h"

namespace virga {
namespace stage {
namespace {

using json = nlohmann::json;
using ingest_internal::InputRange;
using ingest_internal::PartOutput;

constexpr size_t kSkipReportsPerTask = 100;

json OptionsToJson(const IngestOptions& o) {
  return {{"format", FormatName(o.format)},
          {"dataset", o.dataset},
          {"test_fraction", o.test_fraction},
          {"split_seed", o.split_seed},
          {"rows_per_partition", o.rows_per_partition},
          {"on_error", o.on_error == OnError::kSkip ? "skip" : "fail"},
          {"hash_bits", o.parse.hash_bits},
          {"csv_label_column", o.parse.csv_label_column},
          {"csv_header", static_cast<int>(o.parse.csv_header)},
          {"csv_delimiter", std::string(1, o.parse.csv_delimiter)},
          {"classes", o.parse.classes},
          {"label_task", LabelTaskName(o.parse.task)},
          {"codec", CodecName(o.encode.codec)},
          {"zstd_level", o.encode.zstd_level},
          {"min_saving", o.encode.min_saving}};
}

Result<IngestOptions> OptionsFromJson(const json& j) {
  IngestOptions o;
  try {
    VIRGA_ASSIGN_OR_RETURN(o.format, ParseFormatName(j.at("format").get<std::string>()));
    o.dataset = j.at("dataset").get<std::string>();
    o.test_fraction = j.at("test_fraction").get<double>();
    o.split_seed = j.at("split_seed").get<uint64_t>();
    o.rows_per_partition = j.at("rows_per_partition").get<uint32_t>();
    o.on_error = j.at("on_error").get<std::string>() == "skip" ? OnError::kSkip : OnError::kFail;
    o.parse.hash_bits = j.at("hash_bits").get<int>();
    o.parse.csv_label_column = j.at("csv_label_column").get<std::string>();
    const int header = j.at("csv_header").get<int>();
    if (header < 0 || header > 2) return Status::InvalidArgument("ingest task: bad csv_header");
    o.parse.csv_header = static_cast<CsvHeader>(header);
    const std::string delim = j.at("csv_delimiter").get<std::string>();
    if (delim.size() != 1) return Status::InvalidArgument("ingest task: bad csv_delimiter");
    o.parse.csv_delimiter = delim[0];
    o.parse.classes = j.value("classes", 0u);
    VIRGA_ASSIGN_OR_RETURN(o.parse.task, ParseLabelTaskName(j.value("label_task", std::string("any"))));
    VIRGA_ASSIGN_OR_RETURN(o.encode.codec, ParseCodecName(j.at("codec").get<std::string>()));
    o.encode.zstd_level = j.at("zstd_level").get<int>();
    o.encode.min_saving = j.at("min_saving").get<double>();
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("ingest task arguments: ") + e.what());
  }
  o.inputs = {"(task)"};
  VIRGA_RETURN_IF_ERROR(ingest_internal::CheckIngestOptions(o));
  return o;
}

std::string StatsKey(std::string_view dataset, std::string_view job, uint64_t part) {
  return ScratchPrefix(dataset, job) + fmt::format("ingest-stats-{:05}", part);
}

}  // namespace

Result<json> RunIngestPart(const TaskContext& ctx, const json& args, const json& task) {
  VIRGA_ASSIGN_OR_RETURN(IngestOptions o, OptionsFromJson(args));
  std::vector<std::string> skips;
  o.on_skip = [&skips](const std::string& where) {
    if (skips.size() < kSkipReportsPerTask) skips.push_back(where);
  };
  o.max_skip_reports = kSkipReportsPerTask;
  std::vector<InputRange> ranges;
  int64_t part = 0;
  try {
    part = task.at("part").get<int64_t>();
    for (const json& r : task.at("ranges")) {
      ranges.push_back({r.at("path").get<std::string>(), r.at("begin").get<uint64_t>(),
                        r.at("end").get<uint64_t>()});
    }
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("ingest task: ") + e.what());
  }
  if (part < 0) return Status::InvalidArgument("ingest task: negative part");
  VIRGA_ASSIGN_OR_RETURN(PartOutput out, ingest_internal::IngestPart(*ctx.store, o, ranges, part));
  const std::string stats_key = StatsKey(o.dataset, ctx.job, static_cast<uint64_t>(part));
  StatsPiece piece{std::move(out.numeric), std::move(out.binary_counts)};
  VIRGA_RETURN_IF_ERROR(ctx.store->Put(stats_key, EncodeStatsPiece(piece)));
  return json{{"rows", out.rows},
              {"train_rows", out.train_rows},
              {"test_rows", out.test_rows},
              {"skipped_lines", out.skipped_lines},
              {"input_bytes", out.input_bytes},
              {"output_bytes", out.output_bytes},
              {"index_bound", out.index_bound},
              {"labels", {out.labels.count, out.labels.min, out.labels.max, out.labels.positives}},
              {"labels_01", out.labels_01},
              {"labels_pm1", out.labels_pm1},
              {"train", PartsToJson(out.train)},
              {"test", PartsToJson(out.test)},
              {"stats_key", stats_key},
              {"skips", skips}};
}

}  // namespace stage

Result<IngestReport> IngestOnFunctions(const std::string& store_uri, const IngestOptions& options,
                                       const StageOptions& stage, StageStats* stats) {
  using namespace ingest_internal;
  using stage::json;
  const auto start = std::chrono::steady_clock::now();
  VIRGA_RETURN_IF_ERROR(CheckIngestOptions(options));
  if (options.inputs.empty()) return Status::InvalidArgument("no input files given");
  const std::string backend = stage::BackendName(stage);
  for (const std::string& in : options.inputs) {
    VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, in, "input '" + in + "'"));
  }
  VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, store_uri, "store '" + store_uri + "'"));
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> store, ObjectStore::Open(store_uri));
  VIRGA_ASSIGN_OR_RETURN(const std::vector<std::string> inputs, ExpandInputs(options.inputs));
  for (const std::string& in : inputs) {
    if (in == "-") return Status::InvalidArgument("ingest on functions: standard input ('-') cannot be read by functions");
    VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, in, "input '" + in + "'"));
  }
  VIRGA_RETURN_IF_ERROR(PrepareNewDataset(*store, options.dataset));

  // Plan the parts: large uncompressed files cut into byte ranges, small
  // files grouped.
  const uint64_t part_bytes = std::max<uint64_t>(stage.part_bytes, 1);
  const bool csv_header = options.format == Format::kCsv && options.parse.csv_header != CsvHeader::kAbsent;
  std::vector<json> tasks;
  json group = json::array();
  uint64_t group_bytes = 0;
  auto close_group = [&] {
    if (group.empty()) return;
    tasks.push_back({{"part", tasks.size()}, {"ranges", std::move(group)}});
    group = json::array();
    group_bytes = 0;
  };
  for (const std::string& in : inputs) {
    VIRGA_ASSIGN_OR_RETURN(const uint64_t size, InputFileBytes(in));
    bool splittable = size > part_bytes && !csv_header;
    if (splittable) {
      VIRGA_ASSIGN_OR_RETURN(const bool compressed, IsCompressedInput(in));
      splittable = !compressed;
    }
    if (splittable) {
      close_group();
      for (uint64_t begin = 0; begin < size; begin += part_bytes) {
        const uint64_t end = begin + part_bytes >= size ? 0 : begin + part_bytes;
        tasks.push_back({{"part", tasks.size()},
                         {"ranges", json::array({{{"path", in}, {"begin", begin}, {"end", end}}})}});
      }
      continue;
    }
    if (group_bytes > 0 && group_bytes + size > part_bytes) close_group();
    group.push_back({{"path", in}, {"begin", 0}, {"end", 0}});
    group_bytes += size;
  }
  close_group();

  StageStats local_stats;
  StageStats* st = stats != nullptr ? stats : &local_stats;
  Result<std::vector<json>> results = stage::RunTasks(stage, store_uri, "ingest_part", "ingest",
                                                      stage::OptionsToJson(options), tasks, st);
  IngestReport report;
  report.dataset = options.dataset;
  Status status = results.status();
  if (status.ok()) {
    PartOutput merged;
    uint64_t reported = 0;
    try {
      for (const json& r : *results) {
        PartOutput part;
        part.rows = r.at("rows").get<uint64_t>();
        part.train_rows = r.at("train_rows").get<uint64_t>();
        part.test_rows = r.at("test_rows").get<uint64_t>();
        part.skipped_lines = r.at("skipped_lines").get<uint64_t>();
        part.input_bytes = r.at("input_bytes").get<uint64_t>();
        part.output_bytes = r.at("output_bytes").get<uint64_t>();
        part.index_bound = r.at("index_bound").get<uint64_t>();
        const json& l = r.at("labels");
        part.labels.count = l.at(0).get<uint64_t>();
        part.labels.min = l.at(1).get<double>();
        part.labels.max = l.at(2).get<double>();
        part.labels.positives = l.at(3).get<uint64_t>();
        part.labels_01 = r.at("labels_01").get<bool>();
        part.labels_pm1 = r.at("labels_pm1").get<bool>();
        part.train = stage::PartsFromJson(r.at("train"));
        part.test = stage::PartsFromJson(r.at("test"));
        const std::string key = r.at("stats_key").get<std::string>();
        std::string bytes;
        status = store->Get(key, &bytes);
        if (!status.ok()) break;
        Result<stage::StatsPiece> piece = stage::DecodeStatsPiece(bytes, key);
        if (!piece.ok()) {
          status = piece.status();
          break;
        }
        part.numeric = std::move(piece->numeric);
        part.binary_counts = std::move(piece->binary);
        for (const json& where : r.at("skips")) {
          if (reported++ >= options.max_skip_reports) break;
          const std::string w = where.get<std::string>();
          if (options.on_skip) options.on_skip(w);
          else std::fprintf(stderr, "%s (line skipped)\n", w.c_str());
        }
        MergePart(&merged, std::move(part));
      }
    } catch (const json::exception& e) {
      status = Status::Corruption(std::string("ingest: a task's result: ") + e.what());
    }
    if (status.ok() && merged.rows == 0) status = NoRows(inputs);
    if (status.ok()) status = CommitManifest(*store, options, inputs, merged, &report);
  }
  if (!status.ok()) {
    RemoveDatasetObjects(*store, options.dataset);
    return status;
  }
  // The scratch statistics are not part of the dataset.
  for (const json& r : *results) (void)store->Delete(r.at("stats_key").get<std::string>());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  st->seconds += report.seconds;
  return report;
}

}  // namespace virga
