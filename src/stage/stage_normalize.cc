// NormalizeOnFunctions (include/virga/stage.h) and its tasks:
//  - normalize_stats: statistics of a group of train partitions
//    (ComputePartitionStats, merged) -> a StatsPiece object;
//  - stats_reduce: StatsPiece objects merged into one (a tree, 16 per task);
//  - normalize_transform: a group of partitions scaled by the fitted scaler
//    (TransformPartition) -> the partition infos and a StatsPiece of the
//    scaled train statistics.
// The driver fits the scaler between the two maps (a few numbers per numeric
// feature, written to the store for the transform tasks) and commits the
// manifest at the end. Same output as Normalize(): normalize.h.
#include <fmt/format.h>
#include <xxhash.h>

#include "common/coding.h"
#include "common/time_format.h"
#include "ingest/ingest_part.h"
#include "stage/stage_runner.h"
#include "stage/stats_piece.h"
#include "stage/task_kinds.h"

namespace virga {
namespace stage {
namespace {

using json = nlohmann::json;

constexpr size_t kReduceFanIn = 16;
constexpr uint32_t kScalerMagic = 0x31435356;  // "VSC1"

std::string EncodeScaler(const Scaler& s) {
  std::string out;
  coding::PutU32(&out, kScalerMagic);
  coding::PutU32(&out, static_cast<uint32_t>(s.method));
  coding::PutU64(&out, s.index.size());
  for (size_t i = 0; i < s.index.size(); ++i) {
    coding::PutU32(&out, s.index[i]);
    uint64_t bits;
    std::memcpy(&bits, &s.shift[i], 8);
    coding::PutU64(&out, bits);
    std::memcpy(&bits, &s.scale[i], 8);
    coding::PutU64(&out, bits);
  }
  coding::PutU64(&out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<Scaler> DecodeScaler(std::string_view bytes, std::string_view key) {
  auto bad = [&] { return Status::Corruption("scaler object " + std::string(key) + ": malformed"); };
  std::string_view body;
  if (bytes.size() < 8 || !coding::VerifyChecksumTrailer(bytes, &body)) return bad();
  coding::Reader r(body);
  uint32_t magic = 0, method = 0;
  uint64_t n = 0;
  if (!r.U32(&magic) || magic != kScalerMagic || !r.U32(&method) || method > 1 || !r.U64(&n) ||
      n > r.remaining() / 20) {
    return bad();
  }
  Scaler s;
  s.method = static_cast<NormalizeMethod>(method);
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t index = 0;
    uint64_t shift = 0, scale = 0;
    if (!r.U32(&index) || !r.U64(&shift) || !r.U64(&scale)) return bad();
    s.index.push_back(index);
    double d;
    std::memcpy(&d, &shift, 8);
    s.shift.push_back(d);
    std::memcpy(&d, &scale, 8);
    s.scale.push_back(d);
  }
  return s;
}

Result<StatsPiece> ReadPiece(ObjectStore& store, const std::string& key) {
  std::string bytes;
  VIRGA_RETURN_IF_ERROR(store.Get(key, &bytes));
  return DecodeStatsPiece(bytes, key);
}

std::vector<std::string> Strings(const json& a) {
  std::vector<std::string> out;
  for (const json& e : a) out.push_back(e.get<std::string>());
  return out;
}

// Reduces StatsPiece objects `keys` to one on functions (a tree of
// kReduceFanIn-input tasks); returns the key of the result. One key: itself.
Result<std::string> ReduceOnFunctions(const StageOptions& stage, const std::string& store_uri,
                                      const std::string& scratch, const std::string& name,
                                      std::vector<std::string> keys, StageStats* stats) {
  for (int level = 0; keys.size() > 1; ++level) {
    std::vector<json> tasks;
    for (size_t i = 0; i < keys.size(); i += kReduceFanIn) {
      json in = json::array();
      for (size_t k = i; k < std::min(keys.size(), i + kReduceFanIn); ++k) in.push_back(keys[k]);
      tasks.push_back({{"keys", std::move(in)},
                       {"out", scratch + fmt::format("{}-r{}-{:05}", name, level, tasks.size())}});
    }
    VIRGA_ASSIGN_OR_RETURN(std::vector<json> results,
                           RunTasks(stage, store_uri, "stats_reduce",
                                    "normalize " + name + " reduce", json::object(), tasks, stats));
    keys.clear();
    for (const json& r : results) keys.push_back(r.at("key").get<std::string>());
  }
  return keys.empty() ? std::string() : keys[0];
}

}  // namespace

TaskResult RunNormalizeStats(const TaskContext& ctx, const Json& args, const Json& task) {
  try {
    NormalizeScratch scratch;
    StatsPiece total;
    for (const std::string& key : Strings(task.at("keys"))) {
      VIRGA_ASSIGN_OR_RETURN(std::vector<FeatureStat> stats,
                             ComputePartitionStats(*ctx.store, key, &scratch));
      total.Merge(StatsPiece::FromAll(std::move(stats)));
    }
    const std::string out = args.at("scratch").get<std::string>() +
                            fmt::format("stats-{:05}", task.at("group").get<uint64_t>());
    VIRGA_RETURN_IF_ERROR(ctx.store->Put(out, EncodeStatsPiece(total)));
    return json{{"key", out}};
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("normalize_stats task: ") + e.what());
  }
}

TaskResult RunStatsReduce(const TaskContext& ctx, const Json&, const Json& task) {
  try {
    StatsPiece total;
    for (const std::string& key : Strings(task.at("keys"))) {
      VIRGA_ASSIGN_OR_RETURN(StatsPiece piece, ReadPiece(*ctx.store, key));
      total.Merge(std::move(piece));
    }
    const std::string out = task.at("out").get<std::string>();
    VIRGA_RETURN_IF_ERROR(ctx.store->Put(out, EncodeStatsPiece(total)));
    return json{{"key", out}};
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("stats_reduce task: ") + e.what());
  }
}

TaskResult RunNormalizeTransform(const TaskContext& ctx, const Json& args, const Json& task) {
  try {
    const std::string scaler_key = args.at("scaler").get<std::string>();
    std::string bytes;
    VIRGA_RETURN_IF_ERROR(ctx.store->Get(scaler_key, &bytes));
    VIRGA_ASSIGN_OR_RETURN(Scaler scaler, DecodeScaler(bytes, scaler_key));
    PartitionEncodeOptions encode;
    VIRGA_ASSIGN_OR_RETURN(encode.codec, ParseCodecName(args.at("codec").get<std::string>()));
    NormalizeScratch scratch;
    StatsPiece train_stats;
    bool any_train = false;
    std::vector<PartitionInfo> parts;
    for (const json& item : task.at("items")) {
      const std::string in = item.at("in").get<std::string>();
      VIRGA_ASSIGN_OR_RETURN(TransformResult r,
                             TransformPartition(*ctx.store, in, item.at("out").get<std::string>(),
                                                scaler, encode, &scratch));
      const uint64_t rows = item.at("rows").get<uint64_t>(), nnz = item.at("nnz").get<uint64_t>();
      if (r.info.rows != rows || r.info.nnz != nnz) {
        return Status::Corruption(fmt::format(
            "{}: manifest lists {} rows, {} entries; partition holds {} rows, {} entries", in, rows,
            nnz, r.info.rows, r.info.nnz));
      }
      parts.push_back(r.info);
      if (!item.at("test").get<bool>()) {
        any_train = true;
        train_stats.Merge(StatsPiece::FromAll(std::move(r.scaled_stats)));
      }
    }
    json result = {{"parts", PartsToJson(parts)}, {"key", nullptr}};
    if (any_train) {
      const std::string out = args.at("scratch").get<std::string>() +
                              fmt::format("scaled-{:05}", task.at("group").get<uint64_t>());
      VIRGA_RETURN_IF_ERROR(ctx.store->Put(out, EncodeStatsPiece(train_stats)));
      result["key"] = out;
    }
    return result;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("normalize_transform task: ") + e.what());
  }
}

}  // namespace stage

namespace {

Result<NormalizeReport> RunNormalize(const std::string& store_uri, ObjectStore& store,
                                     const NormalizeOptions& options, const StageOptions& stage,
                                     const std::string& scratch, StageStats* stats) {
  using stage::json;
  const auto start = std::chrono::steady_clock::now();
  VIRGA_ASSIGN_OR_RETURN(Manifest in, ReadManifest(store, options.dataset));
  VIRGA_RETURN_IF_ERROR(ParseCodecName(in.codec).status().WithContext(ManifestKey(options.dataset)));
  const size_t per_task = std::max<uint32_t>(stage.partitions_per_task, 1);

  // 1. Statistics map and reduce.
  std::vector<json> tasks;
  for (size_t i = 0; i < in.train.size(); i += per_task) {
    json keys = json::array();
    for (size_t k = i; k < std::min(in.train.size(), i + per_task); ++k) keys.push_back(in.train[k].key);
    tasks.push_back({{"group", tasks.size()}, {"keys", std::move(keys)}});
  }
  const json args = {{"scratch", scratch}};
  VIRGA_ASSIGN_OR_RETURN(std::vector<json> mapped,
                         stage::RunTasks(stage, store_uri, "normalize_stats",
                                         "normalize statistics", args, tasks, stats));
  std::vector<std::string> keys;
  for (const json& r : mapped) keys.push_back(r.at("key").get<std::string>());
  VIRGA_ASSIGN_OR_RETURN(const std::string stats_key,
                         stage::ReduceOnFunctions(stage, store_uri, scratch, "stats", keys, stats));
  stage::StatsPiece total;
  if (!stats_key.empty()) {
    VIRGA_ASSIGN_OR_RETURN(total, stage::ReadPiece(store, stats_key));
  }
  const Scaler scaler = Scaler::Fit(options.method, total.numeric);
  const std::string scaler_key = scratch + "scaler";
  VIRGA_RETURN_IF_ERROR(store.Put(scaler_key, stage::EncodeScaler(scaler)));

  // 2. Transform map, then the reduce of the scaled train statistics.
  tasks.clear();
  std::vector<std::pair<bool, size_t>> order;  // (test, index) of every partition, train first
  for (bool test : {false, true}) {
    const std::vector<PartitionInfo>& parts = test ? in.test : in.train;
    for (size_t i = 0; i < parts.size(); i += per_task) {
      json items = json::array();
      for (size_t k = i; k < std::min(parts.size(), i + per_task); ++k) {
        items.push_back({{"in", parts[k].key},
                         {"out", PartitionKey(options.out, test, k)},
                         {"test", test},
                         {"rows", parts[k].rows},
                         {"nnz", parts[k].nnz}});
      }
      tasks.push_back({{"group", tasks.size()}, {"items", std::move(items)}});
    }
  }
  const json targs = {{"scratch", scratch}, {"scaler", scaler_key}, {"codec", in.codec}};
  VIRGA_ASSIGN_OR_RETURN(std::vector<json> transformed,
                         stage::RunTasks(stage, store_uri, "normalize_transform",
                                         "normalize transform", targs, tasks, stats));
  std::vector<PartitionInfo> train, test;
  keys.clear();
  for (const json& r : transformed) {
    for (PartitionInfo& info : stage::PartsFromJson(r.at("parts"))) {
      const bool is_test = info.key.find("/test/") != std::string::npos;
      (is_test ? test : train).push_back(std::move(info));
    }
    if (!r.at("key").is_null()) keys.push_back(r.at("key").get<std::string>());
  }
  VIRGA_ASSIGN_OR_RETURN(const std::string scaled_key,
                         stage::ReduceOnFunctions(stage, store_uri, scratch, "scaled", keys, stats));
  stage::StatsPiece scaled;
  if (!scaled_key.empty()) {
    VIRGA_ASSIGN_OR_RETURN(scaled, stage::ReadPiece(store, scaled_key));
  }
  return CommitNormalized(store, in, options, std::move(train), std::move(test),
                          scaled.numeric, scaler.size(), start);
}

void RemovePrefix(ObjectStore& store, const std::string& prefix) {
  auto listed = store.List(prefix);
  if (!listed.ok()) return;
  for (const ObjectInfo& o : *listed) (void)store.Delete(o.key);
}

}  // namespace

Result<NormalizeReport> NormalizeOnFunctions(const std::string& store_uri,
                                             const NormalizeOptions& options,
                                             const StageOptions& stage, StageStats* stats) {
  const std::string backend = stage::BackendName(stage);
  VIRGA_RETURN_IF_ERROR(stage::CheckReachable(backend, store_uri, "store '" + store_uri + "'"));
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> store, ObjectStore::Open(store_uri));
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(options.dataset));
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(options.out));
  if (options.out == options.dataset) {
    return Status::InvalidArgument("output dataset '" + options.out +
                                   "' is the input dataset; choose a new name");
  }
  VIRGA_RETURN_IF_ERROR(ingest_internal::PrepareNewDataset(*store, options.out));
  StageStats local_stats;
  StageStats* st = stats != nullptr ? stats : &local_stats;
  const std::string scratch = stage::ScratchPrefix(options.out, stage::NewStageJobId());
  Result<NormalizeReport> r = RunNormalize(store_uri, *store, options, stage, scratch, st);
  if (!r.ok()) {
    ingest_internal::RemoveDatasetObjects(*store, options.out);
    return r.status().WithContext("normalize(" + std::string(NormalizeMethodName(options.method)) +
                                  ") of '" + options.dataset + "' into '" + options.out + "'");
  }
  RemovePrefix(*store, scratch);
  st->seconds += r->seconds;
  return r;
}

}  // namespace virga
