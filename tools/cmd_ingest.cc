#include <cstdio>

#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/stage_flags.h"
#include "virga/ingest.h"
#include "virga/object_store.h"
#include "virga/stage.h"

namespace virga::cli {

void RegisterIngest(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("ingest", "Parse text data into a partitioned dataset in a store");
  struct Args {
    std::string format, store = DefaultStoreUri(), on_error = "fail", codec = "lz4";
    std::string label_column = "0", header = "auto", task = "any";
    IngestOptions o;
    StageFlags stage;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--format", args->format, "libsvm | criteo | csv | ratings")
      ->required()
      ->check(CLI::IsMember({"libsvm", "criteo", "csv", "ratings"}));
  cmd->add_option("--input", args->o.inputs,
                  "Text files (plain, .gz or .zst): paths or object URIs, whose keys may hold "
                  "wildcards, e.g. s3://bucket/raw/*.gz (* ? [..], not across '/')")
      ->required();
  cmd->add_option("--store", args->store, "Object store URI")->capture_default_str();
  cmd->add_option("--dataset", args->o.dataset, "Name of the new dataset")->required();
  cmd->add_option("--test-fraction", args->o.test_fraction, "Share of rows in the test split")
      ->capture_default_str();
  cmd->add_option("--split-seed", args->o.split_seed, "Seed of the train/test split")
      ->capture_default_str();
  cmd->add_option("--rows-per-partition", args->o.rows_per_partition, "Rows per partition object")
      ->capture_default_str();
  cmd->add_option("--hash-bits", args->o.parse.hash_bits, "Criteo: 2^B hashed feature slots")
      ->capture_default_str();
  cmd->add_option("--on-error", args->on_error, "fail | skip bad lines")
      ->check(CLI::IsMember({"fail", "skip"}))
      ->capture_default_str();
  cmd->add_option("--codec", args->codec, "Partition compression: lz4 | zstd | none")
      ->capture_default_str();
  cmd->add_option("--label-column", args->label_column, "CSV: label column name or 0-based index")
      ->capture_default_str();
  cmd->add_option("--classes", args->o.parse.classes,
                  "Multiclass labels (softmax): each label must be a class of 0..K-1, else the "
                  "line is an error; 0 = any label")
      ->capture_default_str();
  cmd->add_option("--task", args->task,
                  "The labels' task, checked line by line (FILE:LINE on a bad one): any | binary "
                  "(0/1 or -1/+1) | regression (any finite number) | multiclass (class numbers; "
                  "--classes K bounds them)")
      ->check(CLI::IsMember({"any", "binary", "regression", "multiclass"}))
      ->capture_default_str();
  cmd->add_option("--header", args->header, "CSV: auto | yes | no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))
      ->capture_default_str();
  args->stage.Add(cmd, /*ingest=*/true);
  cmd->callback([args, exit_code] {
    IngestOptions o = args->o;
    o.format = *ParseFormatName(args->format);
    o.on_error = args->on_error == "skip" ? OnError::kSkip : OnError::kFail;
    o.parse.csv_label_column = args->label_column;
    o.parse.task = *ParseLabelTaskName(args->task);
    o.parse.csv_header = args->header == "yes"  ? CsvHeader::kPresent
                         : args->header == "no" ? CsvHeader::kAbsent
                                                : CsvHeader::kAuto;
    auto codec = ParseCodecName(args->codec);
    if (!codec.ok()) {
      std::fprintf(stderr, "virga ingest: %s\n", codec.status().message().c_str());
      *exit_code = 2;
      return;
    }
    o.encode.codec = *codec;
    if (args->stage.OnFunctions()) {
      auto stage = args->stage.Options("ingest");
      if (!stage.ok()) {
        std::fprintf(stderr, "virga ingest: %s\n", stage.status().message().c_str());
        *exit_code = 2;
        return;
      }
      StageStats stats;
      auto report = IngestOnFunctions(args->store, o, *stage, &stats);
      if (!report.ok()) {
        std::fprintf(stderr, "virga ingest: %s\n", report.status().message().c_str());
        *exit_code = 1;
        return;
      }
      std::printf("%s\n", report->Summary().c_str());
      StageFlags::PrintStats("ingest", stats);
      return;
    }
    auto store = ObjectStore::Open(args->store);
    if (!store.ok()) {
      std::fprintf(stderr, "virga ingest: %s\n", store.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    // Progress against the inputs' stored bytes (wildcards are expanded
    // by Ingest: the total is then unknown).
    uint64_t total = 0;
    for (const std::string& in : o.inputs) {
      auto bytes = in == "-" ? Result<uint64_t>(0) : InputFileBytes(in);
      if (!bytes.ok() || *bytes == 0) {
        total = 0;
        break;
      }
      total += *bytes;
    }
    ProgressLine line("ingest", total);
    o.on_progress = [&line](const IngestProgress& p) { line.Update(p.rows, p.file_bytes); };
    auto report = Ingest(**store, o);
    line.Finish();
    if (!report.ok()) {
      std::fprintf(stderr, "virga ingest: %s\n", report.status().message().c_str());
      *exit_code = 1;
      return;
    }
    std::printf("%s\n", report->Summary().c_str());
  });
}

}  // namespace virga::cli
