// `virga export` (a server table -> a model file) and `virga predict` (a
// model file + a dataset split -> probabilities and metrics). The file
// format is docs/model-file.md; a model file is a local path or an object in
// a store, named by its URI (IsModelUri, include/virga/model_file.h).
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "tools/stage_flags.h"
#include "virga/stage.h"
#include "tools/token.h"
#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/metrics.h"
#include "virga/model_file.h"
#include "virga/ps_client.h"
#include "virga/text_writer.h"
#include "virga/train.h"

namespace virga::cli {
namespace {

struct ExportArgs {
  std::string servers = "127.0.0.1:7311";
  std::string token_file;
  std::string table;
  std::string model = "lr";
  std::string out;
  std::string dataset;  // optional: metadata from its manifest
  std::string store;
  std::string job;      // export the model job JOB kept in the store
};

struct PredictArgs {
  std::string job;  // the model job JOB kept in the store (instead of model_file)
  std::string model_file;
  std::string store;
  std::string dataset;
  std::string split = "test";
  std::string out;
  StageFlags stage;
};

int Fail(const char* cmd, const Status& s, int code = 1) {
  std::fprintf(stderr, "virga %s: %s\n", cmd, s.ToString().c_str());
  return code;
}

// The table's entry in server 0's stats, as training info (best effort: a
// server that does not report it leaves the fields out).
nlohmann::json TrainingInfo(PsClient& client, const std::string& table) {
  nlohmann::json info = {{"table", table}, {"servers", client.num_servers()}};
  auto stats = client.ServerStats(0);
  if (!stats.ok()) return info;
  nlohmann::json j = nlohmann::json::parse(*stats, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("tables") || !j["tables"].is_array()) return info;
  for (const auto& t : j["tables"]) {
    if (!t.is_object() || t.value("name", std::string()) != table) continue;
    if (t.contains("version") && t["version"].is_number_unsigned())
      info["table_version"] = t["version"];
    if (t.contains("optimizer") && t["optimizer"].is_string()) info["optimizer"] = t["optimizer"];
    if (t.contains("width") && t["width"].is_number_unsigned()) info["width"] = t["width"];
  }
  return info;
}

// The URI of the model job `job` kept in `store_uri` (TrainResult::model_file).
Result<std::string> JobModelUri(const std::string& store_uri, const std::string& job) {
  VIRGA_ASSIGN_OR_RETURN(auto store, ObjectStore::Open(store_uri.empty() ? DefaultStoreUri() : store_uri));
  const std::string key = JobModelKey(job);
  VIRGA_ASSIGN_OR_RETURN(bool exists, store->Exists(key));
  if (!exists)
    return Status::NotFound("job '" + job + "' kept no model in " + store->uri() + " (no " + key +
                            "; jobs before this version, or removed by `virga jobs prune`)");
  return store->uri() + "/" + key;
}

// Copies the model job `job` kept in the store to `out`.
int ExportJobModel(const ExportArgs& a, const std::string& job, const char* why) {
  auto uri = JobModelUri(a.store, job);
  if (!uri.ok()) return Fail("export", uri.status());
  auto model = LoadModel(*uri);
  if (!model.ok()) return Fail("export", model.status());
  if (Status s = SaveModel(a.out, *model); !s.ok()) return Fail("export", s);
  std::printf("exported the model of job %s%s (%zu keys, model %s, width %u) from %s to %s\n",
              job.c_str(), why, model->keys.size(), ModelName(model->header.model),
              model->header.width, uri->c_str(), a.out.c_str());
  return 0;
}

int RunExport(const ExportArgs& a) {
  if (a.job.empty() == a.table.empty())
    return Fail("export", Status::InvalidArgument("give --table (a live server's table) or --job "
                                                  "(the model a job kept in --store), not both"), 2);
  if (!a.job.empty()) return ExportJobModel(a, a.job, "");
  // A job's table is <job>.model; once the job has ended its model is in the store.
  const std::string suffix = ".model";
  const bool job_table = a.table.size() > suffix.size() &&
                         a.table.compare(a.table.size() - suffix.size(), suffix.size(), suffix) == 0;
  const std::string job = job_table ? a.table.substr(0, a.table.size() - suffix.size()) : "";
  auto kind = ParseModelName(a.model);
  if (!kind.ok()) return Fail("export", kind.status().WithContext("--model"), 2);
  auto list = ParseServerList(a.servers);
  if (!list.ok()) return Fail("export", list.status().WithContext("--servers"), 2);
  auto token = LoadToken(a.token_file, /*create=*/false);
  if (!token.ok()) return Fail("export", token.status());

  ModelFileHeader header;
  header.model = *kind;
  header.created_at = UtcNowIso8601();
  if (!a.dataset.empty()) {
    auto store = ObjectStore::Open(a.store.empty() ? DefaultStoreUri() : a.store);
    if (!store.ok()) return Fail("export", store.status().WithContext("--store"));
    auto m = ReadManifest(**store, a.dataset);
    if (!m.ok()) return Fail("export", m.status());
    header.dataset = a.dataset;
    header.num_features = m->num_features;
    header.hash_bits = m->hash_bits;
  }

  PsClientOptions o;
  o.servers = *list;
  o.token = *token;
  auto client = PsClient::Connect(o);
  if (!client.ok()) {
    if (job_table && JobModelUri(a.store, job).ok())
      return ExportJobModel(a, job, " (its servers are gone; the copy it kept)");
    return Fail("export", client.status());
  }
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  if (Status s = (*client)->DumpTable(a.table, &rows); !s.ok()) {
    if (job_table && JobModelUri(a.store, job).ok())
      return ExportJobModel(a, job, " (its table is unreadable; the copy it kept)");
    return Fail("export", s.WithContext("table '" + a.table + "'"));
  }
  const nlohmann::json training = TrainingInfo(**client, a.table);
  header.training = training.dump();
  header.width = training.value("width", 1u);
  if (auto made = MakeModel(*kind, header.width); !made.ok())
    return Fail("export", made.status().WithContext("table '" + a.table + "'"));

  auto model = ModelFromRows(header, rows);
  if (!model.ok())
    return Fail("export", model.status().WithContext("table '" + a.table + "' as model " +
                                                     std::string(ModelName(*kind))));
  if (Status s = SaveModel(a.out, *model); !s.ok()) return Fail("export", s);
  std::printf("exported table '%s' (%zu keys, model %s, width %u) to %s\n", a.table.c_str(),
              model->keys.size(), ModelName(*kind), header.width, a.out.c_str());
  return 0;
}

// One line per row: its `outputs` predictions separated by spaces.
Status WriteScores(const std::string& path, std::span<const float> scores, size_t outputs = 1) {
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<TextWriter> w, TextWriter::Open(path));
  std::string buf;
  char line[32];
  for (size_t i = 0; i < scores.size(); ++i) {
    const char end = (i + 1) % outputs == 0 ? '\n' : ' ';
    const int n = std::snprintf(line, sizeof line, "%.9g%c", scores[i], end);
    buf.append(line, static_cast<size_t>(n));
    if (buf.size() >= (1u << 16)) {
      VIRGA_RETURN_IF_ERROR(w->Write(buf));
      buf.clear();
    }
  }
  VIRGA_RETURN_IF_ERROR(w->Write(buf));
  return w->Close();
}

// The metrics line of a scored split: the model's task's metrics, or why none.
void PrintMetrics(FILE* out, ModelTask task, const Metrics& m, const std::string& labels) {
  if (task == ModelTask::kBinary && labels != "binary01" && labels != "binary_pm1") {
    std::fprintf(out, "labels are '%s', not binary: no metrics\n", labels.c_str());
    return;
  }
  std::string line;
  for (const char* name : TaskMetrics(task)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s %.6f  ", name, m.Get(name));
    line += buf;
  }
  std::fprintf(out, "%s(rows %" PRIu64 "%s)\n", line.c_str(), m.rows,
               task == ModelTask::kBinary
                   ? (", positives " + std::to_string(m.positives)).c_str()
                   : "");
}

int RunPredict(PredictArgs a) {
  if (a.job.empty() == a.model_file.empty())
    return Fail("predict", Status::InvalidArgument("give --model-file or --job, not both"), 2);
  if (!a.job.empty()) {
    auto uri = JobModelUri(a.store, a.job);
    if (!uri.ok()) return Fail("predict", uri.status());
    a.model_file = *uri;
  }
  auto split = ParseSplitName(a.split);
  if (!split.ok()) return Fail("predict", split.status().WithContext("--split"), 2);
  auto model = LoadModel(a.model_file);
  if (!model.ok()) return Fail("predict", model.status());
  const ModelFileHeader& hd = model->header;
  auto store = ObjectStore::Open(a.store.empty() ? DefaultStoreUri() : a.store);
  if (!store.ok()) return Fail("predict", store.status().WithContext("--store"));
  auto manifest = ReadManifest(**store, a.dataset);
  if (!manifest.ok()) return Fail("predict", manifest.status());

  // The rows must be encoded like the training rows.
  if (hd.hash_bits != 0 && manifest->hash_bits != 0 && hd.hash_bits != manifest->hash_bits)
    return Fail("predict", Status::InvalidArgument(
                               "model file '" + a.model_file + "' was trained on hash_bits " +
                               std::to_string(hd.hash_bits) + " but dataset '" + a.dataset +
                               "' has hash_bits " + std::to_string(manifest->hash_bits)));
  if (hd.num_features != 0 && manifest->num_features > hd.num_features)
    std::fprintf(stderr,
                 "virga predict: warning: dataset '%s' has %" PRIu64
                 " features, model file '%s' was trained on %" PRIu64
                 " ('%s'): the features beyond weigh 0\n",
                 a.dataset.c_str(), manifest->num_features, a.model_file.c_str(),
                 hd.num_features, hd.dataset.c_str());

  const std::string& labels = manifest->label.kind;
  FILE* report = a.out == "-" ? stderr : stdout;
  if (a.stage.OnFunctions()) {
    auto stage = a.stage.Options("predict");
    if (!stage.ok()) return Fail("predict", stage.status(), 2);
    StageStats stats;
    auto scored = ScoreOnFunctions(a.store.empty() ? DefaultStoreUri() : a.store, a.model_file,
                                   a.dataset, *split, *stage, &stats);
    if (!scored.ok()) return Fail("predict", scored.status());
    if (!a.out.empty()) {
      if (Status s = WriteScores(a.out, scored->scores, scored->outputs); !s.ok())
        return Fail("predict", s);
    }
    std::fprintf(report, "scored %" PRIu64 " rows of dataset '%s' (%s split) with %s model '%s' on functions\n",
                 scored->rows, a.dataset.c_str(), SplitName(*split), ModelName(scored->model),
                 a.model_file.c_str());
    PrintMetrics(report, scored->task, scored->metrics, labels);
    StageFlags::PrintStats("predict", stats);
    return 0;
  }

  auto made = MakeModel(hd.model, hd.width);
  if (!made.ok()) return Fail("predict", made.status().WithContext("model file '" + a.model_file + "'"));
  const bool test = *split == Split::kTest;
  ProgressTotals totals;
  totals.rows = test ? manifest->test_rows : manifest->train_rows;
  for (const PartitionInfo& part : test ? manifest->test : manifest->train) totals.bytes += part.bytes;
  ProgressLine line("predict", totals);
  EvaluatorOptions eo;
  eo.on_load = [&line](uint64_t rows, uint64_t bytes) { line.Update(rows, bytes); };
  auto ev = Evaluator::Load(**store, a.dataset, *split, std::move(made).value(), eo);
  line.Finish();
  if (!ev.ok()) {
    Status s = ev.status();
    if (*split == Split::kTest && manifest->test_rows == 0)
      s = Status(s.code(), s.message() + " (score it with --split train)");
    return Fail("predict", s);
  }
  const std::span<const uint64_t> keys = (*ev)->keys();
  std::vector<float> weights(keys.size() * hd.width);
  model->Gather(keys, weights);
  size_t known = 0;
  for (uint64_t k : keys) known += !model->Find(k).empty();
  const std::vector<float> scores = (*ev)->Scores(weights);
  if (!a.out.empty()) {
    if (Status s = WriteScores(a.out, scores, (*ev)->model().outputs()); !s.ok())
      return Fail("predict", s);
  }

  std::fprintf(report, "scored %zu rows of dataset '%s' (%s split) with %s model '%s'; %zu of %zu keys "
               "have weights\n",
               (*ev)->rows(), a.dataset.c_str(), SplitName(*split), ModelName(hd.model),
               a.model_file.c_str(), known, keys.size());
  PrintMetrics(report, (*ev)->model().task(), (*ev)->Evaluate(weights), labels);
  return 0;
}

}  // namespace

void RegisterModelTools(CLI::App& app, int* exit_code) {
  auto e = std::make_shared<ExportArgs>();
  auto* ex = app.add_subcommand("export", "Write a server table to a model file (docs/model-file.md)");
  ex->add_option("--servers", e->servers, "host:port[,host:port...]")->capture_default_str();
  ex->add_option("--token-file", e->token_file, "Shared secret file");
  ex->add_option("--table", e->table,
                 "Model table on the servers (a job's is JOB.model: once the job has ended, the "
                 "model it kept in --store)");
  ex->add_option("--job", e->job, "Export the model job JOB kept in --store (no server needed)");
  ex->add_option("--model", e->model, "Model of the table: " + ModelNameList() +
                                          " (its width is the table's)")
      ->capture_default_str();
  ex->add_option("--out", e->out,
                 "Model file to write: a local path, or a store URI such as "
                 "s3://bucket/models/m.vmdl or file:///dir/m.vmdl")
      ->required();
  ex->add_option("--dataset", e->dataset, "Training dataset (its manifest fills the metadata)");
  ex->add_option("--store", e->store,
                 "Object store URI of --dataset and of --job's model (default $VIRGA_STORE)");
  ex->callback([e, exit_code] { *exit_code = RunExport(*e); });

  auto p = std::make_shared<PredictArgs>();
  auto* pr = app.add_subcommand("predict", "Score a dataset split with a model file");
  pr->add_option("--model-file", p->model_file,
                 "Model file (virga export, train --model-out): a local path or a store URI");
  pr->add_option("--job", p->job, "Score with the model job JOB kept in --store");
  pr->add_option("--store", p->store, "Object store URI (default $VIRGA_STORE)");
  pr->add_option("--dataset", p->dataset, "Dataset to score")->required();
  pr->add_option("--split", p->split, "test | train")->capture_default_str();
  pr->add_option("--out", p->out,
                 "Write one prediction per line, in row order: a probability (binary models), a "
                 "value (mf), or each class's probability separated by spaces (softmax) "
                 "(.gz/.zst compress; - stdout)");
  p->stage.Add(pr, /*ingest=*/false);
  pr->callback([p, exit_code] { *exit_code = RunPredict(*p); });
}

}  // namespace virga::cli
