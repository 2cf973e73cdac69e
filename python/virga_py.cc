// _virga: the one pybind11 binding file of the Python package `virga`.
//
// A thin layer over the public C++ API (include/virga/) plus the embeddable
// parameter server (src/ps/server.h). Conveniences (sessions, estimators,
// searches, plots) live in pure Python (python/virga/). Rules:
//  - every non-OK Status becomes a Python exception carrying the engine's
//    message: InvalidArgumentError (also a ValueError), NotFoundError (also a
//    LookupError), else Error (a RuntimeError); `.code` names the Status code;
//  - every call that does I/O or runs a job releases the GIL, so a job's
//    Run() on one Python thread does not block kill()/progress() on another.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ps/server.h"
#include "virga/backend.h"
#include "virga/datagen.h"
#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/ingest.h"
#include "virga/metrics.h"
#include "virga/model_file.h"
#include "virga/normalize.h"
#include "virga/stage.h"
#include "virga/object_store.h"
#include "virga/optimizer.h"
#include "virga/successive_halving.h"
#include "virga/train.h"
#include "channel/channel_job.h"

namespace py = pybind11;

namespace virga::python {
namespace {

PyObject* g_error = nullptr;          // virga.Error(RuntimeError)
PyObject* g_invalid = nullptr;        // InvalidArgumentError(Error, ValueError)
PyObject* g_not_found = nullptr;      // NotFoundError(Error, LookupError)

// Raises the Python exception for `s`. REQUIRES: !s.ok(), the GIL held.
[[noreturn]] void Raise(const Status& s) {
  PyObject* type = s.IsInvalidArgument() ? g_invalid : s.IsNotFound() ? g_not_found : g_error;
  py::object exc = py::reinterpret_steal<py::object>(
      PyObject_CallFunction(type, "s", s.message().c_str()));
  if (!exc) throw py::error_already_set();
  exc.attr("code") = CodeName(s.code());
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}
void Check(const Status& s) {
  if (!s.ok()) Raise(s);
}
template <typename T>
T Take(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(r).value();
}

// Runs f() without the GIL (I/O, jobs) and returns its value.
template <typename F>
auto NoGil(F&& f) {
  py::gil_scoped_release nogil;
  return f();
}

// float32 engine values shown as the decimal the user typed (0.1, not 0.100000001).
double Shortest(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(x));
  return std::stod(buf);
}

std::shared_ptr<ObjectStore> OpenStore(const std::string& uri) {
  Result<std::shared_ptr<ObjectStore>> r = ObjectStore::Open(uri);
  return Take(std::move(r));
}

// ---- data ------------------------------------------------------------------

py::dict DatagenCriteo(uint64_t rows, uint64_t seed, const std::string& out) {
  CriteoGenOptions o;
  o.rows = rows;
  o.seed = seed;
  o.out_path = out;
  auto r = NoGil([&] { return GenerateCriteo(o); });
  const CriteoGenReport& g = Take(std::move(r));
  py::dict d;
  d["rows"] = g.rows;
  d["positives"] = g.positives;
  d["bytes"] = g.bytes;
  d["bayes_logloss"] = g.bayes_logloss;
  d["expected_bayes_logloss"] = g.expected_bayes_logloss;
  d["seconds"] = g.seconds;
  return d;
}

struct Backend;
// Stage options running on `backend`'s functions (docs/stages.md).
StageOptions OnFunctions(const Backend* backend, uint32_t functions, uint64_t part_mb);

py::dict RunIngest(const std::string& store_uri, const std::string& format,
                   const std::vector<std::string>& inputs, const std::string& dataset,
                   double test_fraction, int hash_bits, uint32_t rows_per_partition,
                   const std::string& on_error, const std::string& label_column,
                   const std::string& header, uint64_t split_seed, const Backend* backend,
                   uint32_t functions, uint64_t part_mb, const std::string& task,
                   uint32_t classes) {
  IngestOptions o;
  o.format = Take(ParseFormatName(format));
  o.inputs = inputs;
  o.dataset = dataset;
  o.test_fraction = test_fraction;
  o.split_seed = split_seed;
  o.rows_per_partition = rows_per_partition;
  o.parse.hash_bits = hash_bits;
  o.parse.csv_label_column = label_column;
  o.parse.task = Take(ParseLabelTaskName(task));  // the CLI's --task and --classes
  o.parse.classes = classes;
  if (on_error == "fail") {
    o.on_error = OnError::kFail;
  } else if (on_error == "skip") {
    o.on_error = OnError::kSkip;
  } else {
    Raise(Status::InvalidArgument("on_error: 'fail' or 'skip', got '" + on_error + "'"));
  }
  if (header == "auto") {
    o.parse.csv_header = CsvHeader::kAuto;
  } else if (header == "yes") {
    o.parse.csv_header = CsvHeader::kPresent;
  } else if (header == "no") {
    o.parse.csv_header = CsvHeader::kAbsent;
  } else {
    Raise(Status::InvalidArgument("header: 'auto', 'yes' or 'no', got '" + header + "'"));
  }
  Result<IngestReport> r = Status::Internal("not run");
  if (backend != nullptr) {
    const StageOptions stage = OnFunctions(backend, functions, part_mb);
    r = NoGil([&] { return IngestOnFunctions(store_uri, o, stage); });
  } else {
    auto store = OpenStore(store_uri);
    r = NoGil([&] { return Ingest(*store, o); });
  }
  const IngestReport& g = Take(std::move(r));
  py::dict d;
  d["dataset"] = g.dataset;
  d["rows"] = g.rows;
  d["train_rows"] = g.train_rows;
  d["test_rows"] = g.test_rows;
  d["partitions"] = g.partitions;
  d["num_features"] = g.num_features;
  d["skipped_lines"] = g.skipped_lines;
  d["seconds"] = g.seconds;
  d["summary"] = g.Summary();
  return d;
}

// Ingests CSR rows from memory (IngestRows): row r's features are indices[indptr[r] ..
// indptr[r+1]) with `data` at the same positions; labels as given. The indices are the rows'
// own (column j is feature j), recorded as format libsvm.
py::dict RunIngestCsr(const std::string& store_uri, const std::string& dataset,
                      py::array_t<int64_t, py::array::c_style | py::array::forcecast> indptr,
                      py::array_t<int64_t, py::array::c_style | py::array::forcecast> indices,
                      py::array_t<float, py::array::c_style | py::array::forcecast> data,
                      py::array_t<float, py::array::c_style | py::array::forcecast> labels,
                      double test_fraction, uint64_t split_seed, uint32_t rows_per_partition,
                      const std::string& source, const std::string& task) {
  const int64_t rows = labels.size(), nnz = indices.size();
  if (indptr.ndim() != 1 || indptr.size() != rows + 1 || data.size() != nnz)
    Raise(Status::InvalidArgument("ingest_csr: indptr must have rows + 1 entries and data "
                                  "as many as indices"));
  if (nnz > 0xFFFFFFFFll)
    Raise(Status::InvalidArgument("ingest_csr: more than 2^32-1 stored values; split the rows"));
  const int64_t* ip = indptr.data();
  const int64_t* ix = indices.data();
  std::vector<uint32_t> offsets(static_cast<size_t>(rows) + 1), index(static_cast<size_t>(nnz));
  if (ip[0] != 0 || ip[rows] != nnz)
    Raise(Status::InvalidArgument("ingest_csr: indptr must start at 0 and end at len(indices)"));
  for (int64_t r = 0; r <= rows; ++r) {
    if (r > 0 && ip[r] < ip[r - 1])
      Raise(Status::InvalidArgument("ingest_csr: indptr decreases at row " + std::to_string(r)));
    offsets[r] = static_cast<uint32_t>(ip[r]);
  }
  for (int64_t p = 0; p < nnz; ++p) {
    if (ix[p] < 0 || ix[p] > 0xFFFFFFFFll)
      Raise(Status::InvalidArgument("ingest_csr: feature index " + std::to_string(ix[p]) +
                                    " outside [0, 2^32)"));
    index[p] = static_cast<uint32_t>(ix[p]);
  }
  RowBlockView view{{labels.data(), static_cast<size_t>(rows)}, offsets, index,
                    {data.data(), static_cast<size_t>(nnz)}};
  IngestOptions o;
  o.format = Format::kLibsvm;
  o.inputs = {source};
  o.dataset = dataset;
  o.test_fraction = test_fraction;
  o.split_seed = split_seed;
  o.rows_per_partition = rows_per_partition;
  o.parse.task = Take(ParseLabelTaskName(task));  // the same label rule as text ingest
  auto store = OpenStore(store_uri);
  auto r = NoGil([&] { return IngestRows(*store, o, view); });
  const IngestReport& g = Take(std::move(r));
  py::dict d;
  d["dataset"] = g.dataset;
  d["rows"] = g.rows;
  d["train_rows"] = g.train_rows;
  d["test_rows"] = g.test_rows;
  d["num_features"] = g.num_features;
  d["seconds"] = g.seconds;
  return d;
}

py::dict RunNormalize(const std::string& store_uri, const std::string& dataset,
                      const std::string& out, const std::string& method, const Backend* backend,
                      uint32_t functions) {
  NormalizeOptions o;
  o.dataset = dataset;
  o.out = out;
  o.method = Take(ParseNormalizeMethod(method));
  Result<NormalizeReport> r = Status::Internal("not run");
  if (backend != nullptr) {
    const StageOptions stage = OnFunctions(backend, functions, 128);
    r = NoGil([&] { return NormalizeOnFunctions(store_uri, o, stage); });
  } else {
    auto store = OpenStore(store_uri);
    r = NoGil([&] { return Normalize(*store, o); });
  }
  const NormalizeReport& g = Take(std::move(r));
  py::dict d;
  d["partitions"] = g.partitions;
  d["rows"] = g.rows;
  d["features_scaled"] = g.features_scaled;
  d["seconds"] = g.seconds;
  return d;
}

std::string ManifestJson(const std::string& store_uri, const std::string& dataset) {
  auto store = OpenStore(store_uri);
  auto r = NoGil([&] { return ReadManifest(*store, dataset); });
  return ManifestToJson(Take(std::move(r)));
}

py::dict Metrics(py::array_t<float, py::array::c_style | py::array::forcecast> prob,
                 py::array_t<float, py::array::c_style | py::array::forcecast> labels) {
  if (prob.ndim() != 1 || labels.ndim() != 1 || prob.size() != labels.size())
    Raise(Status::InvalidArgument("metrics: probabilities and labels must be 1-d of one length"));
  BinaryMetrics m = ComputeBinaryMetrics({prob.data(), static_cast<size_t>(prob.size())},
                                         {labels.data(), static_cast<size_t>(labels.size())});
  py::dict d;
  d["logloss"] = m.logloss;
  d["auc"] = m.auc;
  d["accuracy"] = m.accuracy;
  d["rows"] = m.rows;
  d["positives"] = m.positives;
  return d;
}

// ---- servers, backends -----------------------------------------------------

// An embedded parameter server on loopback; port 0 picks a free port.
class Server {
 public:
  Server(const std::string& token, int threads, const std::string& bind, uint16_t port) {
    ps::PsServerOptions o;
    o.net.token = token;
    o.net.threads = threads;
    o.net.bind = bind;
    o.net.port = port;
    server_ = std::make_unique<ps::PsServer>(o);
    Status s;
    {
      py::gil_scoped_release nogil;
      s = server_->Start();
    }
    Check(s);
  }
  uint16_t port() const { return server_ ? server_->port() : 0; }
  void Stop() {
    py::gil_scoped_release nogil;
    if (server_) server_->Stop();
    server_.reset();
  }

 private:
  std::unique_ptr<ps::PsServer> server_;
};

struct Backend {
  std::shared_ptr<ComputeBackend> impl;
};

StageOptions OnFunctions(const Backend* backend, uint32_t functions, uint64_t part_mb) {
  StageOptions stage;
  stage.backend_instance = backend->impl;
  stage.max_functions = functions;
  stage.part_bytes = part_mb << 20;
  return stage;
}

BackendConfig ToBackendConfig(const std::string& name,
                              const std::map<std::string, std::string>& settings) {
  BackendConfig c;
  c.name = name;
  c.settings = settings;
  return c;
}

// A backend by name ("": $VIRGA_BACKEND, else local) with its settings (include/virga/backend.h).
Backend NewBackend(const std::string& name, const std::map<std::string, std::string>& settings) {
  auto r = MakeBackend(ToBackendConfig(name, settings));
  return Backend{std::shared_ptr<ComputeBackend>(Take(std::move(r)))};
}

// The registered backends: name, help and settings (name, env, help) of each.
py::list Backends() {
  py::list out;
  for (const BackendDescription& b : RegisteredBackends()) {
    py::list settings;
    for (const BackendSetting& s : b.settings) {
      py::dict d;
      d["name"] = std::string(s.name);
      d["env"] = std::string(s.env);
      d["help"] = std::string(s.help);
      settings.append(d);
    }
    py::dict d;
    d["name"] = std::string(b.name);
    d["help"] = std::string(b.help);
    d["settings"] = settings;
    out.append(d);
  }
  return out;
}

py::list BackendFunctions(Backend& b) {
  std::vector<FunctionInfo> list;
  {
    py::gil_scoped_release nogil;
    list = b.impl->List();
  }
  py::list out;
  for (const FunctionInfo& f : list) {
    py::dict d;
    d["id"] = f.id;
    d["label"] = f.label;
    d["state"] = FunctionStateName(f.state);
    d["pid"] = f.pid;
    d["wall_seconds"] = f.wall_seconds;
    out.append(d);
  }
  return out;
}

// ---- training jobs ---------------------------------------------------------

py::dict TrainDefaults() {
  TrainOptions o;
  o.optimizer = TrainOptions::DefaultOptimizer();
  py::dict d;
  d["store"] = o.store;
  d["model"] = o.model;
  d["rank"] = o.rank;
  d["classes"] = o.classes;
  d["workers"] = o.workers;
  d["optimizer"] = OptimizerName(o.optimizer.kind);
  d["learning_rate"] = Shortest(o.optimizer.learning_rate);
  d["lr_schedule"] = LrScheduleName(o.optimizer.schedule);
  d["l1"] = Shortest(o.optimizer.l1);
  d["l2"] = Shortest(o.optimizer.l2);
  d["clip"] = Shortest(o.optimizer.clip);
  d["ftrl_beta"] = Shortest(o.optimizer.ftrl_beta);
  d["minibatch"] = o.minibatch;
  d["epochs"] = o.epochs;
  d["staleness"] = o.staleness;
  d["function_timeout"] = o.function_timeout.count() / 1000.0;
  d["function_memory_mb"] = o.function_memory_mb;
  d["target_loss"] = o.target_loss;
  d["time_limit"] = o.time_limit_seconds;
  d["eval_interval"] = o.eval_interval_seconds;
  d["rows_per_item"] = o.rows_per_item;
  d["seed"] = o.seed;
  d["stop_on_divergence"] = o.stop_on_divergence;
  d["channel"] = o.channel;
  d["channel_uri"] = o.channel_uri;
  return d;
}

std::chrono::milliseconds Seconds(const py::handle& v) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(v.cast<double>() * 1000)));
}

// Fills TrainOptions from a dict whose keys are TrainDefaults()'s plus
// dataset, test_dataset, job_id, servers, token, registry_dir, keep_table,
// lease_ms, local_steps, max_start_delay, backend (a name), backend_settings (a dict),
// checkpoint_interval (seconds), server_process, server_binary, resume and
// tls_cert, tls_key, tls_ca (PEM file paths).
// Unknown keys are InvalidArgument.
TrainOptions ToTrainOptions(const py::dict& d) {
  TrainOptions o;
  o.optimizer = TrainOptions::DefaultOptimizer();
  for (auto [k, v] : d) {
    const std::string key = k.cast<std::string>();
    if (v.is_none()) continue;
    if (key == "store") o.store = v.cast<std::string>();
    else if (key == "dataset") o.dataset = v.cast<std::string>();
    else if (key == "test_dataset") o.test_dataset = v.cast<std::string>();
    else if (key == "model") o.model = v.cast<std::string>();
    else if (key == "rank") o.rank = v.cast<uint32_t>();
    else if (key == "classes") o.classes = v.cast<uint32_t>();
    else if (key == "workers") o.workers = v.cast<uint32_t>();
    else if (key == "optimizer") o.optimizer.kind = Take(ParseOptimizerName(v.cast<std::string>()));
    else if (key == "learning_rate") o.optimizer.learning_rate = v.cast<float>();
    else if (key == "lr_schedule") o.optimizer.schedule = Take(ParseLrScheduleName(v.cast<std::string>()));
    else if (key == "l1") o.optimizer.l1 = v.cast<float>();
    else if (key == "l2") o.optimizer.l2 = v.cast<float>();
    else if (key == "clip") o.optimizer.clip = v.cast<float>();
    else if (key == "ftrl_beta") o.optimizer.ftrl_beta = v.cast<float>();
    else if (key == "minibatch") o.minibatch = v.cast<uint32_t>();
    else if (key == "epochs") o.epochs = v.cast<uint32_t>();
    else if (key == "staleness") o.staleness = v.cast<int32_t>();
    else if (key == "local_steps") o.local_steps = v.cast<uint32_t>();
    else if (key == "function_timeout") o.function_timeout = Seconds(v);
    else if (key == "function_memory_mb") o.function_memory_mb = v.cast<uint64_t>();
    else if (key == "max_start_delay") o.max_start_delay = Seconds(v);
    else if (key == "target_loss") o.target_loss = v.cast<double>();
    else if (key == "time_limit") o.time_limit_seconds = v.cast<double>();
    else if (key == "eval_interval") o.eval_interval_seconds = v.cast<double>();
    else if (key == "rows_per_item") o.rows_per_item = v.cast<uint32_t>();
    else if (key == "lease_ms") o.lease_ms = v.cast<uint32_t>();
    else if (key == "seed") o.seed = v.cast<uint64_t>();
    else if (key == "job_id") o.job_id = v.cast<std::string>();
    else if (key == "servers") o.servers = v.cast<std::vector<std::string>>();
    else if (key == "token") o.token = v.cast<std::string>();
    else if (key == "backend") o.backend_config.name = v.cast<std::string>();
    else if (key == "backend_settings")
      o.backend_config.settings = v.cast<std::map<std::string, std::string>>();
    else if (key == "keep_table") o.keep_table = v.cast<bool>();
    else if (key == "registry_dir") o.registry_dir = v.cast<std::string>();
    else if (key == "stop_on_divergence") o.stop_on_divergence = v.cast<bool>();
    else if (key == "channel") o.channel = v.cast<std::string>();
    else if (key == "channel_uri") o.channel_uri = v.cast<std::string>();
    else if (key == "checkpoint_interval") o.checkpoint_interval_seconds = v.cast<double>();
    else if (key == "server_process") o.server_process = v.cast<bool>();
    else if (key == "server_binary") o.server_binary = v.cast<std::string>();
    else if (key == "resume") o.resume = v.cast<bool>();
    else if (key == "tls_cert") o.tls_cert_file = v.cast<std::string>();
    else if (key == "tls_key") o.tls_key_file = v.cast<std::string>();
    else if (key == "tls_ca") o.tls_ca_file = v.cast<std::string>();
    else Raise(Status::InvalidArgument("train: unknown option '" + key + "'"));
  }
  return o;
}

// The model registry (include/virga/model.h): each model's name, task, primary
// metric and defaults, for the estimators.
py::list ModelsList() {
  py::list out;
  for (const ModelInfo* m : Models()) {
    py::dict d;
    d["name"] = m->name;
    d["task"] = TaskName(m->task);
    d["metric"] = PrimaryMetric(m->task);
    d["summary"] = m->summary;
    const OptimizerConfig c = m->own_optimizer ? m->optimizer : TrainOptions::DefaultOptimizer();
    d["optimizer"] = OptimizerName(c.kind);
    d["learning_rate"] = Shortest(c.learning_rate);
    d["l1"] = Shortest(c.l1);
    d["l2"] = Shortest(c.l2);
    d["minibatch"] = m->minibatch;
    d["epochs"] = m->epochs;
    out.append(d);
  }
  return out;
}

py::dict ProgressDict(const TrainProgress& p) {
  py::dict d;
  d["seconds"] = p.seconds;
  d["epoch"] = p.epoch;
  d["epochs"] = p.epochs;
  d["samples"] = p.samples;
  d["updates"] = p.updates;
  d["samples_per_second"] = p.samples_per_second;
  d["metric"] = p.metric;
  d["test_metric"] = p.test_metric;
  d["best_metric"] = p.best_metric;
  d["test_logloss"] = p.test_logloss;
  d["best_logloss"] = p.best_logloss;
  d["test_auc"] = p.test_auc;
  d["workers_alive"] = p.workers_alive;
  d["workers_launched"] = p.workers_launched;
  d["workers_failed"] = p.workers_failed;
  d["state"] = p.state;
  return d;
}

// One TrainJob. run() blocks (without the GIL) until the job ends; kill(),
// progress() and history() may be called from other threads meanwhile.
// close() frees the job (its workers, its table unless keep_table); it
// refuses while run() is active.
class Job {
 public:
  Job(const py::dict& options, std::optional<Backend> backend) {
    TrainOptions o = ToTrainOptions(options);
    if (backend) o.backend = backend->impl;
    if (Take(channel::IsStorageChannel(o))) {
      // No parameter server: the storage-channel job (docs/channel.md), same interface.
      auto r = NoGil([&] { return channel::ChannelJob::Create(std::move(o)); });
      job_ = std::make_unique<Runner<channel::ChannelJob>>(Take(std::move(r)));
    } else {
      auto r = NoGil([&] { return TrainJob::Create(std::move(o)); });
      job_ = std::make_unique<Runner<TrainJob>>(Take(std::move(r)));
    }
  }
  ~Job() {
    if (job_ && !running_) {
      py::gil_scoped_release nogil;
      job_.reset();
    }
  }

  std::string Run() {
    AnyJob& j = Live();
    bool expected = false;
    if (!running_.compare_exchange_strong(expected, true))
      Raise(Status::InvalidArgument("train: run() was already called"));
    auto r = NoGil([&] { return j.Run(); });
    running_ = false;
    // Not through Take(): GCC 12 reports a false -Wmaybe-uninitialized on moving a large
    // Result<TrainResult> out of its variant.
    if (!r.ok()) Raise(r.status());
    return TrainResultToJson(*r);
  }
  void Kill() { Live().Kill(); }
  py::dict Progress() { return ProgressDict(Live().progress()); }
  py::list History() {
    py::list out;
    for (const HistoryPoint& h : Live().history()) {
      py::dict d;
      d["seconds"] = h.seconds;
      d["updates"] = h.updates;
      d["samples"] = h.samples;
      d["test_metric"] = h.test_metric;
      d["test_logloss"] = h.test_logloss;
      d["test_auc"] = h.test_auc;
      d["test_accuracy"] = h.test_accuracy;
      d["test_rmse"] = h.test_rmse;
      d["test_mae"] = h.test_mae;
      out.append(d);
    }
    return out;
  }
  void SaveModel(const std::string& path) {
    AnyJob& j = Live();
    Status s;
    {
      py::gil_scoped_release nogil;
      s = j.SaveModel(path);
    }
    Check(s);
  }
  py::dict Options() {
    const TrainOptions& o = Live().options();
    py::dict d;
    d["job_id"] = o.job_id;
    d["dataset"] = o.dataset;
    d["test_dataset"] = o.test_dataset;
    d["model"] = o.model;
    d["workers"] = o.workers;
    d["optimizer"] = OptimizerName(o.optimizer.kind);
    d["learning_rate"] = Shortest(o.optimizer.learning_rate);
    d["minibatch"] = o.minibatch;
    d["epochs"] = o.epochs;
    d["servers"] = o.servers;
    d["channel"] = o.channel;
    d["backend"] = o.backend_config.name;
    return d;
  }
  void Close() {
    if (running_) Raise(Status::InvalidArgument("train: close() while the job runs; kill() it first"));
    py::gil_scoped_release nogil;
    job_.reset();
  }

 private:
  // A TrainJob or a channel::ChannelJob behind one interface.
  struct AnyJob {
    virtual ~AnyJob() = default;
    virtual Result<TrainResult> Run() = 0;
    virtual void Kill() = 0;
    virtual TrainProgress progress() const = 0;
    virtual std::vector<HistoryPoint> history() const = 0;
    virtual Status SaveModel(const std::string& path) = 0;
    virtual const TrainOptions& options() const = 0;
  };
  template <typename J>
  struct Runner final : AnyJob {
    explicit Runner(std::unique_ptr<J> j) : job(std::move(j)) {}
    Result<TrainResult> Run() override { return job->Run(); }
    void Kill() override { job->Kill(); }
    TrainProgress progress() const override { return job->progress(); }
    std::vector<HistoryPoint> history() const override { return job->history(); }
    Status SaveModel(const std::string& path) override { return job->SaveModel(path); }
    const TrainOptions& options() const override { return job->options(); }
    std::unique_ptr<J> job;
  };
  AnyJob& Live() {
    if (!job_) Raise(Status::InvalidArgument("train: the job was closed"));
    return *job_;
  }
  std::unique_ptr<AnyJob> job_;
  std::atomic<bool> running_{false};
};

py::list ListJobsPy(const std::string& dir) {
  auto r = NoGil([&] { return ListJobs(dir); });
  py::list out;
  for (const JobEntry& e : Take(std::move(r))) {
    py::dict d;
    d["job_id"] = e.job_id;
    d["state"] = e.state;
    d["pid"] = e.pid;
    d["alive"] = e.alive;
    d["status_json"] = e.status_json;
    out.append(d);
  }
  return out;
}

// ---- models ----------------------------------------------------------------

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

class Model {
 public:
  explicit Model(ModelData data) : data_(std::move(data)) {}
  static Model Load(const std::string& path) {
    auto r = NoGil([&] { return LoadModel(path); });
    return Model(Take(std::move(r)));
  }
  void Save(const std::string& path) const {
    Status s;
    {
      py::gil_scoped_release nogil;
      s = virga::SaveModel(path, data_);
    }
    Check(s);
  }
  py::dict Header() const {
    const ModelFileHeader& h = data_.header;
    py::dict d;
    d["model"] = ModelName(h.model);
    d["width"] = h.width;
    d["task"] = TaskName(ModelInfoOf(h.model).task);
    d["dataset"] = h.dataset;
    d["num_features"] = h.num_features;
    d["hash_bits"] = h.hash_bits;
    d["training"] = h.training;
    d["created_at"] = h.created_at;
    d["version"] = h.version;
    d["keys"] = data_.keys.size();
    return d;
  }
  // Probabilities and labels of every row of a dataset split.
  std::pair<FloatArray, FloatArray> ScoreDataset(const std::string& store_uri,
                                                 const std::string& dataset,
                                                 const std::string& split) const {
    const Split which = Take(ParseSplitName(split));
    auto store = OpenStore(store_uri);
    std::vector<float> scores;
    auto ev = NoGil([&] {
      auto e = Evaluator::Load(*store, dataset, which, Make());
      if (e.ok()) scores = Score(**e);
      return e;
    });
    std::unique_ptr<Evaluator> e = Take(std::move(ev));
    return {ToArray(scores, e->model().outputs()),
            ToArray({e->labels().begin(), e->labels().end()})};
  }
  // Probabilities of CSR rows: row r's features are indices[indptr[r]..indptr[r+1])
  // with `data` at the same positions (None: all 1).
  FloatArray ScoreCsr(Int64Array indptr, Int64Array indices, std::optional<FloatArray> data) const {
    const int64_t rows = indptr.size() - 1;
    if (indptr.ndim() != 1 || rows < 0)
      Raise(Status::InvalidArgument("predict: indptr must be 1-d with rows + 1 entries"));
    const int64_t* ip = indptr.data();
    const int64_t* ix = indices.data();
    const float* v = data ? data->data() : nullptr;
    const int64_t nnz = indices.size();
    if (data && data->size() != nnz)
      Raise(Status::InvalidArgument("predict: data and indices differ in length"));
    if (ip[0] != 0 || ip[rows] != nnz)
      Raise(Status::InvalidArgument("predict: indptr must start at 0 and end at len(indices)"));
    RowBlock block;
    block.Reserve(static_cast<size_t>(rows), static_cast<size_t>(nnz));
    for (int64_t r = 0; r < rows; ++r) {
      if (ip[r + 1] < ip[r] || ip[r + 1] > nnz)
        Raise(Status::InvalidArgument("predict: indptr is not non-decreasing at row " +
                                      std::to_string(r)));
      for (int64_t p = ip[r]; p < ip[r + 1]; ++p) {
        if (ix[p] < 0 || ix[p] > 0xFFFFFFFFll)
          Raise(Status::InvalidArgument("predict: row " + std::to_string(r) + ": feature index " +
                                        std::to_string(ix[p]) + " outside [0, 2^32)"));
        const float val = v ? v[p] : 1.0f;
        if (!std::isfinite(val))
          Raise(Status::InvalidArgument("predict: row " + std::to_string(r) +
                                        ": non-finite value"));
        block.AddFeature(static_cast<uint32_t>(ix[p]), val);
      }
      block.EndRow(0.0f);
    }
    std::vector<float> scores;
    {
      py::gil_scoped_release nogil;
      Evaluator e(Make(), std::move(block));
      scores = Score(e);
    }
    return ToArray(scores, Make()->outputs());
  }

 private:
  std::vector<float> Score(const Evaluator& e) const {
    std::vector<float> w(e.keys().size() * e.width());
    data_.Gather(e.keys(), w);
    return e.Scores(w);
  }
  // The model of the file's kind and width (its rank, its classes).
  std::unique_ptr<virga::Model> Make() const {
    return Take(MakeModel(data_.header.model, data_.header.width));
  }
  // 1-d, or rows x `cols` (a multiclass model's class probabilities).
  static FloatArray ToArray(const std::vector<float>& v, size_t cols = 1) {
    FloatArray a = cols == 1 ? FloatArray(static_cast<py::ssize_t>(v.size()))
                             : FloatArray({static_cast<py::ssize_t>(v.size() / cols),
                                           static_cast<py::ssize_t>(cols)});
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  }
  ModelData data_;
};

}  // namespace
// virga.SuccessiveHalving's rule (include/virga/successive_halving.h).
struct Halving {
  explicit Halving(virga::SuccessiveHalving h) : sh(std::move(h)) {}
  virga::SuccessiveHalving sh;
};

std::unique_ptr<Halving> MakeHalving(double eta, double min_resource, const std::string& resource,
                                     double max_resource) {
  if (resource != "epochs" && resource != "time")
    Raise(Status::InvalidArgument("SuccessiveHalving: resource is 'epochs' or 'time'"));
  auto r = virga::SuccessiveHalving::Create(
      eta, min_resource,
      resource == "time" ? virga::SuccessiveHalving::Resource::kSeconds
                         : virga::SuccessiveHalving::Resource::kEpochs,
      max_resource);
  if (!r.ok()) Raise(r.status());
  return std::make_unique<Halving>(std::move(r).value());
}

// History points as the Python side keeps them: dicts with seconds, samples and
// test_metric (the model's primary metric; test_logloss in older histories).
std::vector<virga::SuccessiveHalving::Point> HalvingPoints(const py::iterable& history) {
  std::vector<virga::SuccessiveHalving::Point> out;
  auto get = [](const py::dict& d, const char* k) {
    return d.contains(k) && !d[k].is_none() ? d[k].cast<double>() : 0.0;
  };
  for (py::handle h : history) {
    const py::dict d = py::reinterpret_borrow<py::dict>(h);
    const char* metric = d.contains("test_metric") ? "test_metric" : "test_logloss";
    out.push_back({get(d, "seconds"), get(d, "samples"),
                   d.contains(metric) && !d[metric].is_none() ? d[metric].cast<double>()
                                                              : std::nan("")});
  }
  return out;
}

}  // namespace virga::python

PYBIND11_MODULE(_virga, m) {
  using namespace virga::python;
  namespace v = virga;
  m.doc() = "virga engine bindings (use the `virga` package)";
  spdlog::set_level(spdlog::level::warn);  // the embedded server logs every connection at info

  g_error = PyErr_NewException("virga.Error", PyExc_RuntimeError, nullptr);
  py::object invalid_bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_ValueError));
  g_invalid = PyErr_NewException("virga.InvalidArgumentError", invalid_bases.ptr(), nullptr);
  py::object nf_bases = py::make_tuple(py::handle(g_error), py::handle(PyExc_LookupError));
  g_not_found = PyErr_NewException("virga.NotFoundError", nf_bases.ptr(), nullptr);
  m.attr("Error") = py::handle(g_error);
  m.attr("InvalidArgumentError") = py::handle(g_invalid);
  m.attr("NotFoundError") = py::handle(g_not_found);

  m.def("set_log_level", [](const std::string& level) {
    spdlog::set_level(spdlog::level::from_str(level));
  });
  m.def("datagen_criteo", &DatagenCriteo, py::arg("rows"), py::arg("seed"), py::arg("out"));
  m.def("ingest", &RunIngest, py::arg("store"), py::arg("format"), py::arg("inputs"),
        py::arg("dataset"), py::arg("test_fraction") = 0.1, py::arg("hash_bits") = 20,
        py::arg("rows_per_partition") = virga::kDefaultRowsPerPartition, py::arg("on_error") = "fail",
        py::arg("label_column") = "0", py::arg("header") = "auto", py::arg("split_seed") = 42,
        py::arg("backend") = py::none(), py::arg("functions") = 0,
        py::arg("part_mb") = 128, py::arg("task") = "any", py::arg("classes") = 0);
  m.def("ingest_csr", &RunIngestCsr, py::arg("store"), py::arg("dataset"), py::arg("indptr"),
        py::arg("indices"), py::arg("data"), py::arg("labels"), py::arg("test_fraction") = 0.0,
        py::arg("split_seed") = 42, py::arg("rows_per_partition") = virga::kDefaultRowsPerPartition,
        py::arg("source") = "<memory>", py::arg("task") = "any");
  m.def("normalize", &RunNormalize, py::arg("store"), py::arg("dataset"), py::arg("out"),
        py::arg("method"), py::arg("backend") = py::none(),
        py::arg("functions") = 0);
  m.def("manifest_json", &ManifestJson, py::arg("store"), py::arg("dataset"));
  m.def("metrics", &Metrics, py::arg("prob"), py::arg("labels"));
  m.def("train_defaults", &TrainDefaults);
  m.def("models", &ModelsList);
  m.def("default_registry_dir", &v::DefaultRegistryDir);
  m.def("list_jobs", &ListJobsPy, py::arg("registry_dir"));
  m.def("request_kill", [](const std::string& dir, const std::string& id) {
    Check(v::RequestKill(dir, id));
  }, py::arg("registry_dir"), py::arg("job_id"));

  py::class_<Server>(m, "PsServer")
      .def(py::init<const std::string&, int, const std::string&, uint16_t>(), py::arg("token"),
           py::arg("threads") = 1, py::arg("bind") = "127.0.0.1", py::arg("port") = 0)
      .def_property_readonly("port", &Server::port)
      .def("stop", &Server::Stop);

  m.def("backends", &Backends);
  m.def("default_backend_name", &v::DefaultBackendName);
  m.def("check_backend", [](const std::string& name, const std::map<std::string, std::string>& settings) {
    Check(v::CheckBackendConfig(ToBackendConfig(name, settings)));
  }, py::arg("name"), py::arg("settings"));
  py::class_<Backend>(m, "Backend")
      .def(py::init(&NewBackend), py::arg("name") = "",
           py::arg("settings") = std::map<std::string, std::string>())
      .def_property_readonly("name", [](const Backend& b) { return std::string(b.impl->name()); })
      .def("functions", &BackendFunctions);

  // Objects in a store (what jobs leave there: docs/object-layout.md).
  m.def("store_uri", [](const std::string& uri) { return OpenStore(uri)->uri(); }, py::arg("store"));
  m.def("store_put", [](const std::string& uri, const std::string& key, const py::bytes& data) {
    auto store = OpenStore(uri);
    std::string bytes = data;
    Check(NoGil([&] { return store->Put(key, bytes); }));
  }, py::arg("store"), py::arg("key"), py::arg("data"));
  m.def("store_get", [](const std::string& uri, const std::string& key) {
    auto store = OpenStore(uri);
    std::string bytes;
    Check(NoGil([&] { return store->Get(key, &bytes); }));
    return py::bytes(bytes);
  }, py::arg("store"), py::arg("key"));
  // Keys under a prefix, and deletion (the estimators remove the datasets they staged).
  m.def("store_list", [](const std::string& uri, const std::string& prefix) {
    auto store = OpenStore(uri);
    auto r = NoGil([&] { return store->List(prefix); });
    std::vector<std::string> keys;
    for (const v::ObjectInfo& o : Take(std::move(r))) keys.push_back(o.key);
    return keys;
  }, py::arg("store"), py::arg("prefix"));
  m.def("store_delete", [](const std::string& uri, const std::string& key) {
    auto store = OpenStore(uri);
    Check(NoGil([&] { return store->Delete(key); }));
  }, py::arg("store"), py::arg("key"));
  m.def("job_result_key", [](const std::string& job) { return v::JobResultKey(job); });
  m.def("job_model_key", [](const std::string& job) { return v::JobModelKey(job); });
  m.def("search_result_key", [](const std::string& id) { return v::SearchResultKey(id); });

  py::class_<Job>(m, "TrainJob")
      .def(py::init<const py::dict&, std::optional<Backend>>(), py::arg("options"),
           py::arg("backend") = py::none())
      .def("run", &Job::Run)
      .def("kill", &Job::Kill)
      .def("progress", &Job::Progress)
      .def("history", &Job::History)
      .def("save_model", &Job::SaveModel, py::arg("path"))
      .def("options", &Job::Options)
      .def("close", &Job::Close);

  py::class_<Halving>(m, "SuccessiveHalving")
      .def(py::init(&MakeHalving), py::arg("eta"), py::arg("min_resource") = 0.0,
           py::arg("resource") = "epochs", py::arg("max_resource") = 0.0)
      .def("rungs", [](const Halving& h, double full) { return h.sh.Rungs(full); }, py::arg("full"))
      .def("loss_at",
           [](const Halving& h, const py::iterable& history, double rung, double train_rows) {
             const auto points = HalvingPoints(history);
             return h.sh.LossAt(points, rung, train_rows);
           },
           py::arg("history"), py::arg("rung"), py::arg("train_rows"))
      .def("decide", [](Halving& h, double rung, double loss) { return h.sh.Decide(rung, loss); },
           py::arg("rung"), py::arg("loss"));

  py::class_<Model>(m, "Model")
      .def_static("load", &Model::Load, py::arg("path"))
      .def("save", &Model::Save, py::arg("path"))
      .def("header", &Model::Header)
      .def("score_dataset", &Model::ScoreDataset, py::arg("store"), py::arg("dataset"),
           py::arg("split") = "test")
      .def("score_csr", &Model::ScoreCsr, py::arg("indptr"), py::arg("indices"),
           py::arg("data") = py::none());
}
