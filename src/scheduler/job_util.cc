#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>

#include "common/cpus.h"
#include "common/time_format.h"
#include "scheduler/job_internal.h"

namespace virga::sched {

std::string RandomToken() {
  unsigned char bytes[16];
  std::random_device rd;  // /dev/urandom on Linux
  for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

std::string NewJobId() { return "job-" + UtcNowCompact() + "-" + RandomToken().substr(0, 6); }

Status ValidateJobId(std::string_view id) {
  if (id.empty() || id.size() > 100) {
    return Status::InvalidArgument("job id: must be 1..100 bytes, got " + std::to_string(id.size()));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("job id '" + std::string(id) + "': only [A-Za-z0-9._-]");
  }
  return Status::OK();
}

std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const size_t nl = text.rfind('\n');
  return std::string(nl == std::string_view::npos ? text : text.substr(nl + 1));
}

int EmbeddedServerThreads(uint32_t local_workers) {
  const long cpus = UsableCpus();
  const auto local = static_cast<long>(local_workers);
  return static_cast<int>(std::clamp<long>(std::max(cpus - local, std::min(local, cpus)), 1, 8));
}

void ResolveAutoSettings(const Manifest& manifest, TrainOptions* o) {
  if (o->minibatch == 0) o->minibatch = kDefaultMinibatch;
  if (o->epochs == 0) {
    // Small data sets get more passes: at least kAutoEpochSamples samples
    // (a 300-row set: 100 epochs, not 5), at most kAutoEpochsMax.
    const uint64_t rows = std::max<uint64_t>(manifest.train_rows, 1);
    const uint64_t want = (kAutoEpochSamples + rows - 1) / rows;
    o->epochs = static_cast<uint32_t>(std::clamp<uint64_t>(want, kDefaultEpochs, kAutoEpochsMax));
  }
  if (o->local_steps == 0) {
    // Workers x steps bounded: the rounds of many workers, each computed
    // without the others' last ones, must not add up to an overshoot.
    const uint32_t bounded = std::clamp<uint32_t>(kLocalStepsBudget / std::max(o->workers, 1u), 16,
                                                  kDefaultLocalSteps);
    o->local_steps = o->staleness == -1 ? bounded : 1;
  }
}

namespace {

Status CheckLabels(const Manifest& m, const ModelInfo& info, const ModelShape& shape) {
  const LabelStat& l = m.label;
  auto bad = [&](const std::string& why) {
    char range[64];
    std::snprintf(range, sizeof range, "%g..%g", l.min, l.max);
    return Status::InvalidArgument("train: dataset '" + m.name + "' has labels " + range + " (" +
                                   l.kind + "); model '" + info.name + "' " + why);
  };
  switch (info.task) {
    case ModelTask::kBinary:
      if (l.kind == "real") return bad("needs binary labels (0/1 or -1/+1)");
      break;
    case ModelTask::kMulticlass:
      if (l.count > 0 && (l.min < 0 || l.max > shape.classes - 1.0 || l.min != std::floor(l.min) ||
                          l.max != std::floor(l.max))) {
        return bad("needs class labels 0.." + std::to_string(shape.classes - 1));
      }
      break;
    case ModelTask::kRegression:
      break;
  }
  return Status::OK();
}

}  // namespace

Result<JobModel> ResolveModel(const Manifest& manifest, TrainOptions* o) {
  JobModel jm;
  VIRGA_ASSIGN_OR_RETURN(jm.kind, ParseModelName(o->model));
  const ModelInfo& info = ModelInfoOf(jm.kind);
  jm.shape.rank = o->rank;
  jm.shape.classes = o->classes;
  if (info.task == ModelTask::kMulticlass && jm.shape.classes == 0 && manifest.label.max >= 1 &&
      manifest.label.max < 65536) {
    jm.shape.classes = static_cast<uint32_t>(manifest.label.max) + 1;
  }
  Result<uint32_t> width = info.width(jm.shape);
  if (!width.ok()) return width.status().WithContext(std::string("train: model '") + info.name + "'");
  jm.width = *width;
  VIRGA_RETURN_IF_ERROR(CheckLabels(manifest, info, jm.shape));
  if (info.own_optimizer && o->optimizer == TrainOptions::DefaultOptimizer()) {
    o->optimizer = info.optimizer;
  }
  if (o->minibatch == 0) o->minibatch = info.minibatch;
  if (o->epochs == 0) o->epochs = info.epochs;
  return jm;
}

uint64_t EstimateTableBytes(const Manifest& m, const JobModel& model,
                            const OptimizerConfig& optimizer) {
  const uint64_t floats = uint64_t{model.width} * (1 + OptimizerStateWidth(optimizer.kind));
  const uint64_t cell = (8 + 4 + 4 * floats + 7) / 8 * 8;
  return (m.num_features + 1) * cell * 2;
}

Status CheckTableFits(const Manifest& m, const JobModel& model, const OptimizerConfig& optimizer,
                      uint64_t memory_bytes) {
  const uint64_t need = EstimateTableBytes(m, model, optimizer);
  if (memory_bytes == 0 || need <= memory_bytes / 10 * 8) return Status::OK();
  char text[320];
  std::snprintf(text, sizeof text,
                "train: model '%s' of width %u over %llu features needs about %.1f GB on its "
                "server (%s state included), more than 80%% of its %.1f GB: lower --rank, ingest "
                "with fewer --hash-bits, or give it servers of its own (--servers)",
                ModelName(model.kind), model.width,
                static_cast<unsigned long long>(m.num_features), need / 1e9,
                OptimizerName(optimizer.kind), memory_bytes / 1e9);
  return Status::InvalidArgument(text);
}

uint64_t PhysicalMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

Result<EvaluatorLoad> PrepareEvaluator(std::shared_ptr<ObjectStore> store, std::string_view dataset,
                                       const JobModel& model, bool fallback_to_train) {
  VIRGA_ASSIGN_OR_RETURN(Manifest m, ReadManifest(*store, dataset));
  Split split = Split::kTest;
  if (m.test_rows == 0) {
    if (!fallback_to_train) {
      return Status::InvalidArgument("dataset '" + std::string(dataset) +
                                     "' has no test split: ingest it with --test-fraction > 0 or "
                                     "pass --test NAME");
    }
    split = Split::kTrain;
  }
  VIRGA_RETURN_IF_ERROR(MakeModel(model.kind, model.width).status());
  return EvaluatorLoad([store = std::move(store), name = std::string(dataset), split,
                        kind = model.kind,
                        width = model.width]() -> Result<std::unique_ptr<Evaluator>> {
    VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<Model> made, MakeModel(kind, width));
    return Evaluator::Load(*store, name, split, std::move(made));
  });
}

namespace {

double BucketValueNs(size_t i) {
  // Geometric middle of [2^(i/8), 2^((i+1)/8)).
  return std::exp2((static_cast<double>(i) + 0.5) / 8.0);
}

double Percentile(const std::vector<uint64_t>& h, double q) {
  uint64_t n = 0;
  for (uint64_t c : h) n += c;
  if (n == 0) return 0;
  const double want = q * static_cast<double>(n);
  uint64_t seen = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    seen += h[i];
    if (static_cast<double>(seen) >= want && h[i] > 0) return BucketValueNs(i) / 1000.0;
  }
  return BucketValueNs(h.size() - 1) / 1000.0;
}

}  // namespace

void MergeTimes(const IterationTimes& from, IterationTimes* into) {
  const double a = static_cast<double>(into->iterations), b = static_cast<double>(from.iterations);
  if (b == 0) return;
  auto mix = [&](double x, double y) { return (x * a + y * b) / (a + b); };
  into->data_wait_us = mix(into->data_wait_us, from.data_wait_us);
  into->pull_us = mix(into->pull_us, from.pull_us);
  into->compute_us = mix(into->compute_us, from.compute_us);
  into->push_us = mix(into->push_us, from.push_us);
  into->iterations += from.iterations;
  if (into->histogram.size() < from.histogram.size()) into->histogram.resize(from.histogram.size());
  for (size_t i = 0; i < from.histogram.size(); ++i) into->histogram[i] += from.histogram[i];
  into->p50_us = Percentile(into->histogram, 0.5);
  into->p99_us = Percentile(into->histogram, 0.99);
}

void EstimateCost(TrainResult* r) {
  constexpr double kPerGbSecond = 0.0000166667;
  constexpr double kPerInvocation = 0.20 / 1e6;
  constexpr double kServerPerHour = 0.096;
  r->cost_functions_usd =
      r->function_gb_seconds * kPerGbSecond + static_cast<double>(r->workers_launched) * kPerInvocation;
  r->cost_server_usd = r->train_seconds / 3600.0 * kServerPerHour;
  r->cost_total_usd = r->cost_functions_usd + r->cost_server_usd;
}

}  // namespace virga::sched
