// Stages on functions, end to end with real `virga worker` processes of the
// local backend (VIRGA_BINARY): each stage's output is compared with the
// in-process one on the same input.
#include "virga/stage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "virga/dataset.h"
#include "virga/evaluator.h"
#include "virga/model_file.h"
#include "virga/normalize.h"
#include "virga/object_store.h"
#include "virga/partition.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

// Every row of a split as text ("label|idx:val ..."), sorted: the multiset of rows.
std::vector<std::string> Rows(ObjectStore& store, const Manifest& m, bool test) {
  std::vector<std::string> rows;
  PartitionBuffer buf;
  std::string bytes;
  for (const PartitionInfo& p : test ? m.test : m.train) {
    EXPECT_TRUE(store.Get(p.key, &bytes).ok()) << p.key;
    EXPECT_TRUE(DecodePartition(bytes, p.key, &buf).ok()) << p.key;
    const RowBlockView v = buf.view();
    for (size_t r = 0; r < v.rows(); ++r) {
      std::string s = fmt::format("{}|", v.labels[r]);
      for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) s += fmt::format("{}:{} ", v.indices[q], v.value(q));
      rows.push_back(std::move(s));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

// Forwards to a local backend; kills the first `kills` functions `after` their launch.
class KillingBackend final : public ComputeBackend {
 public:
  KillingBackend(std::unique_ptr<ComputeBackend> inner, int kills, std::chrono::milliseconds after)
      : inner_(std::move(inner)), kills_(kills), after_(after) {}
  ~KillingBackend() override {
    for (auto& t : killers_) t.join();
  }
  std::string_view name() const override { return inner_->name(); }
  Result<uint64_t> Launch(std::string_view payload, const FunctionLimits& limits) override {
    VIRGA_ASSIGN_OR_RETURN(uint64_t id, inner_->Launch(payload, limits));
    if (kills_.fetch_sub(1) > 0) {
      killed_.fetch_add(1);
      killers_.emplace_back([this, id] {
        std::this_thread::sleep_for(after_);
        (void)inner_->Kill(id);
      });
    }
    return id;
  }
  Result<FunctionInfo> Query(uint64_t id) override { return inner_->Query(id); }
  Status Kill(uint64_t id) override { return inner_->Kill(id); }
  Result<FunctionInfo> Wait(uint64_t id, std::chrono::milliseconds t) override { return inner_->Wait(id, t); }
  std::vector<FunctionInfo> List() override { return inner_->List(); }
  void Forget(uint64_t id) override { inner_->Forget(id); }
  int killed() const { return killed_.load(); }

 private:
  std::unique_ptr<ComputeBackend> inner_;
  std::atomic<int> kills_;
  std::atomic<int> killed_{0};
  std::chrono::milliseconds after_;
  std::vector<std::thread> killers_;  // Launch is called from the driver's thread only
};

class StageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("virga-stage-{}-{}", ::getpid(), info->name());
    fs::create_directories(dir_);
    store_uri_ = "file://" + (dir_ / "store").string();
    store_ = *ObjectStore::Open(store_uri_);
    // Three small files and one large one. Feature 7 is real-valued in the
    // first file and binary (always 1) in the others, so the statistics of the
    // parts must merge exactly; feature 3 is binary everywhere.
    std::mt19937 rng(5);
    for (int f = 0; f < 4; ++f) {
      std::string text;
      const int rows = f == 3 ? 6000 : 300;
      for (int r = 0; r < rows; ++r) {
        text += std::to_string(rng() % 2);
        if (rng() % 2) text += " 3:1";
        text += f == 0 ? fmt::format(" 7:{:.3f}", (rng() % 1000) / 100.0) : std::string(" 7:1");
        for (int k = 10 + rng() % 5; k < 60; k += 1 + rng() % 9) text += fmt::format(" {}:{:.2f}", k, (rng() % 500) / 50.0);
        text += "\n";
      }
      const fs::path p = dir_ / fmt::format("in{}.txt", f);
      std::ofstream(p) << text;
      inputs_.push_back(p.string());
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  StageOptions Stage() const {
    StageOptions o;
    o.backend.name = "local";
    o.backend.settings["worker_binary"] = VIRGA_BINARY;
    o.max_functions = 2;
    o.part_bytes = 40 << 10;  // the large file is cut into several byte ranges
    o.partitions_per_task = 2;
    o.limits.memory_mb = 0;
    return o;
  }

  IngestOptions Ingest(const std::string& name) const {
    IngestOptions o;
    o.format = Format::kLibsvm;
    o.inputs = inputs_;
    o.dataset = name;
    o.rows_per_partition = 500;
    return o;
  }

  fs::path dir_;
  std::string store_uri_;
  std::shared_ptr<ObjectStore> store_;
  std::vector<std::string> inputs_;
};

void ExpectSameStats(const std::vector<FeatureStat>& a, const std::vector<FeatureStat>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index);
    EXPECT_EQ(a[i].count, b[i].count) << "feature " << a[i].index;
    EXPECT_EQ(a[i].min, b[i].min);
    EXPECT_EQ(a[i].max, b[i].max);
    EXPECT_NEAR(a[i].sum, b[i].sum, 1e-9 * std::max(1.0, std::abs(a[i].sum)));
    EXPECT_NEAR(a[i].sum_sq, b[i].sum_sq, 1e-9 * std::max(1.0, std::abs(a[i].sum_sq)));
  }
}

TEST_F(StageTest, IngestOnFunctionsHasTheRowsAndStatisticsOfIngest) {
  ASSERT_TRUE(virga::Ingest(*store_, Ingest("inproc")).ok());
  StageStats stats;
  auto r = IngestOnFunctions(store_uri_, Ingest("onfn"), Stage(), &stats);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(stats.tasks, 4u);  // the large file alone is several byte ranges
  EXPECT_GE(stats.functions, 2u);
  EXPECT_EQ(stats.task_runs, stats.tasks);
  auto a = ReadManifest(*store_, "inproc");
  auto b = ReadManifest(*store_, "onfn");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->train_rows + a->test_rows, b->train_rows + b->test_rows);
  EXPECT_EQ(r->rows, 6900u);
  EXPECT_EQ(a->num_features, b->num_features);
  EXPECT_EQ(a->label.count, b->label.count);
  EXPECT_EQ(a->label.positives, b->label.positives);
  EXPECT_EQ(a->label.kind, b->label.kind);
  EXPECT_EQ(a->input_bytes, b->input_bytes);
  std::vector<std::string> rows_a = Rows(*store_, *a, false), rows_b = Rows(*store_, *b, false);
  auto test_a = Rows(*store_, *a, true), test_b = Rows(*store_, *b, true);
  rows_a.insert(rows_a.end(), test_a.begin(), test_a.end());
  rows_b.insert(rows_b.end(), test_b.begin(), test_b.end());
  std::sort(rows_a.begin(), rows_a.end());
  std::sort(rows_b.begin(), rows_b.end());
  EXPECT_EQ(rows_a, rows_b);
  // The train statistics of the parted ingest are those of its own train rows:
  // recompute them in process from its partitions.
  std::vector<FeatureStat> all;
  for (const PartitionInfo& p : b->train) MergeStats(&all, *ComputePartitionStats(*store_, p.key));
  std::vector<FeatureStat> numeric;
  for (const FeatureStat& f : all) {
    if (IsNumericFeature(f)) numeric.push_back(f);
  }
  ExpectSameStats(b->numeric_features, numeric);
  // Feature 7 is numeric with every one of its entries counted (the binary ones too).
  auto f7 = std::find_if(numeric.begin(), numeric.end(), [](const FeatureStat& f) { return f.index == 7; });
  ASSERT_NE(f7, numeric.end());
  EXPECT_EQ(f7->count, b->train_rows);
  // No scratch object is left.
  auto listed = store_->List("datasets/onfn/_stage/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
}

TEST_F(StageTest, ABadLineFailsTheStageNamingItAndLeavesNoDataset) {
  std::ofstream(inputs_[1], std::ios::app) << "1 5:1\nnot-a-label 3:1\n";
  auto r = IngestOnFunctions(store_uri_, Ingest("bad"), Stage());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(inputs_[1] + ":302:"), std::string::npos) << r.status().ToString();
  auto listed = store_->List("datasets/bad/");
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  // In a byte range, the location is the line's byte offset.
  std::ofstream(inputs_[3], std::ios::app) << "x 1:1\n";
  const uint64_t at = fs::file_size(inputs_[3]) - 6;
  IngestOptions o = Ingest("bad2");
  o.inputs = {inputs_[3]};
  r = IngestOnFunctions(store_uri_, o, Stage());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(inputs_[3] + " at byte " + std::to_string(at)), std::string::npos)
      << r.status().ToString();
}

TEST_F(StageTest, KilledFunctionsLoseNoTask) {
  StageOptions o = Stage();
  LocalBackendOptions lo;
  lo.worker_binary = VIRGA_BINARY;
  lo.enforce_memory_cap = false;
  auto inner = MakeLocalBackend(lo);
  ASSERT_TRUE(inner.ok());
  auto killing = std::make_shared<KillingBackend>(std::move(*inner), 3, std::chrono::milliseconds(0));  // at once: before they claim
  o.backend_instance = killing;
  o.task_lease = std::chrono::milliseconds(1500);
  StageStats stats;
  auto r = IngestOnFunctions(store_uri_, Ingest("killed"), o, &stats);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(killing->killed(), 3);
  // The killed ones were replaced while tasks remained: at least one more function did the work.
  EXPECT_GE(stats.functions, 4u);
  EXPECT_EQ(r->rows, 6900u);
  ASSERT_TRUE(virga::Ingest(*store_, Ingest("reference")).ok());
  auto a = ReadManifest(*store_, "reference");
  auto b = ReadManifest(*store_, "killed");
  auto ra = Rows(*store_, *a, false), rb = Rows(*store_, *b, false);
  auto ta = Rows(*store_, *a, true), tb = Rows(*store_, *b, true);
  ra.insert(ra.end(), ta.begin(), ta.end());
  rb.insert(rb.end(), tb.begin(), tb.end());
  std::sort(ra.begin(), ra.end());
  std::sort(rb.begin(), rb.end());
  EXPECT_EQ(ra, rb);
}

TEST_F(StageTest, NormalizeAndScoreOnFunctionsMatchInProcess) {
  ASSERT_TRUE(virga::Ingest(*store_, Ingest("raw")).ok());
  NormalizeOptions no;
  no.dataset = "raw";
  no.out = "norm_inproc";
  no.method = NormalizeMethod::kStandard;
  ASSERT_TRUE(Normalize(*store_, no).ok());
  no.out = "norm_onfn";
  StageStats stats;
  auto nr = NormalizeOnFunctions(store_uri_, no, Stage(), &stats);
  ASSERT_TRUE(nr.ok()) << nr.status().ToString();
  EXPECT_GE(stats.tasks, 6u);  // statistics map, reduce, transform map, reduce
  auto a = ReadManifest(*store_, "norm_inproc");
  auto b = ReadManifest(*store_, "norm_onfn");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->train.size(), b->train.size());
  ASSERT_EQ(a->test.size(), b->test.size());
  auto base = [](const std::string& k) { return k.substr(k.rfind('/')); };
  for (size_t i = 0; i < a->train.size(); ++i) EXPECT_EQ(base(a->train[i].key), base(b->train[i].key));
  ExpectSameStats(a->numeric_features, b->numeric_features);
  EXPECT_EQ(a->derived_from, b->derived_from);
  // Same values, up to the last bits of the sums the scaler is fitted from.
  PartitionBuffer pa, pb;
  std::string ba, bb;
  for (size_t i = 0; i < a->train.size(); ++i) {
    ASSERT_TRUE(store_->Get(a->train[i].key, &ba).ok() && store_->Get(b->train[i].key, &bb).ok());
    ASSERT_TRUE(DecodePartition(ba, "a", &pa).ok() && DecodePartition(bb, "b", &pb).ok());
    const RowBlockView va = pa.view(), vb = pb.view();
    ASSERT_EQ(va.nnz(), vb.nnz());
    for (size_t q = 0; q < va.nnz(); ++q) ASSERT_NEAR(va.value(q), vb.value(q), 1e-5);
  }
  EXPECT_TRUE(store_->List("datasets/norm_onfn/_stage/")->empty());

  // Score the test split with a model file on functions and in process.
  ModelFileHeader h;
  h.model = ModelKind::kLogisticRegression;
  h.width = 1;
  std::vector<std::pair<uint64_t, std::vector<float>>> rows;
  for (uint64_t k = 0; k < 60; ++k) rows.push_back({k, {static_cast<float>(std::sin(k)) * 0.3f}});
  auto model = ModelFromRows(h, rows);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::string model_uri = store_uri_ + "/models/m.vmodel";
  ASSERT_TRUE(SaveModel(model_uri, *model).ok());
  StageOptions so = Stage();
  auto scored = ScoreOnFunctions(store_uri_, model_uri, "raw", Split::kTest, so);
  ASSERT_TRUE(scored.ok()) << scored.status().ToString();
  auto ev = Evaluator::Load(*store_, "raw", Split::kTest, ModelKind::kLogisticRegression);
  ASSERT_TRUE(ev.ok());
  std::vector<float> w((*ev)->keys().size());
  model->Gather((*ev)->keys(), w);
  const std::vector<float> expect = (*ev)->Scores(w);
  ASSERT_EQ(scored->scores, expect);
  const Metrics m = (*ev)->Evaluate(w);
  EXPECT_TRUE(scored->has_metrics);
  EXPECT_DOUBLE_EQ(scored->metrics.logloss, m.logloss);
  EXPECT_DOUBLE_EQ(scored->metrics.auc, m.auc);
  EXPECT_TRUE(store_->List("scratch/")->empty());
}

// Every registered model scores on functions: the same predictions (all of a
// softmax's classes) and the same metrics of its task as in process.
TEST_F(StageTest, ScoreOnFunctionsScoresEveryModelAsInProcess) {
  ASSERT_TRUE(virga::Ingest(*store_, Ingest("raw")).ok());
  std::mt19937 rng(9);
  std::string text;  // three classes for softmax
  for (int r = 0; r < 900; ++r) {
    text += std::to_string(r % 3);
    for (int k = 1 + rng() % 5; k < 60; k += 1 + rng() % 9) text += fmt::format(" {}:1", k);
    text += "\n";
  }
  std::ofstream(dir_ / "classes.txt") << text;
  IngestOptions io = Ingest("classes");
  io.inputs = {(dir_ / "classes.txt").string()};
  ASSERT_TRUE(virga::Ingest(*store_, io).ok());

  for (const ModelInfo* info : Models()) {
    SCOPED_TRACE(info->name);
    auto width = info->width(ModelShape{.rank = 2, .classes = 3});
    ASSERT_TRUE(width.ok()) << width.status().ToString();
    ModelFileHeader h;
    h.model = info->kind;
    h.width = *width;
    std::normal_distribution<float> n(0.0f, 0.3f);
    std::vector<std::pair<uint64_t, std::vector<float>>> rows;
    for (uint64_t k = 0; k < 60; ++k) {
      std::vector<float> row(*width);
      for (float& x : row) x = n(rng);
      rows.push_back({k, std::move(row)});
    }
    rows.push_back({kBiasKey, std::vector<float>(*width, 0.1f)});
    auto model = ModelFromRows(h, rows);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const std::string model_uri = store_uri_ + "/models/" + info->name + ".vmodel";
    ASSERT_TRUE(SaveModel(model_uri, *model).ok());
    const std::string dataset = info->task == ModelTask::kMulticlass ? "classes" : "raw";

    auto scored = ScoreOnFunctions(store_uri_, model_uri, dataset, Split::kTest, Stage());
    ASSERT_TRUE(scored.ok()) << scored.status().ToString();
    auto made = MakeModel(info->kind, *width);
    ASSERT_TRUE(made.ok());
    auto ev = Evaluator::Load(*store_, dataset, Split::kTest, std::move(made).value());
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    std::vector<float> w((*ev)->keys().size() * *width);
    model->Gather((*ev)->keys(), w);
    EXPECT_EQ(scored->model, info->kind);
    EXPECT_EQ(scored->task, info->task);
    EXPECT_EQ(scored->outputs, info->task == ModelTask::kMulticlass ? 3u : 1u);
    EXPECT_EQ(scored->rows, (*ev)->rows());
    ASSERT_EQ(scored->scores, (*ev)->Scores(w));
    ASSERT_TRUE(scored->has_metrics);
    const Metrics m = (*ev)->Evaluate(w);
    for (const char* name : TaskMetrics(info->task)) {
      EXPECT_FALSE(std::isnan(scored->metrics.Get(name))) << name;
      EXPECT_DOUBLE_EQ(scored->metrics.Get(name), m.Get(name)) << name;
    }
  }
  EXPECT_TRUE(store_->List("scratch/")->empty());
}

TEST_F(StageTest, LocalInputsAreRefusedForRemoteBackends) {
  StageOptions o = Stage();
  o.backend.name = "lambda";
  o.backend.settings.clear();
  auto r = IngestOnFunctions("s3://bucket", Ingest("x"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("input '" + inputs_[0] + "' is on this machine"), std::string::npos)
      << r.status().ToString();
  IngestOptions remote = Ingest("x");
  remote.inputs = {"s3://bucket/raw.txt"};
  r = IngestOnFunctions(store_uri_, remote, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("store '" + store_uri_ + "' is on this machine"), std::string::npos)
      << r.status().ToString();
}

}  // namespace
}  // namespace virga
