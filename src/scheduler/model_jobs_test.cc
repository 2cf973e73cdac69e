// Jobs of the models beyond the linear ones, end to end with real `virga
// worker` processes (VIRGA_BINARY): matrix factorization on planted ratings,
// softmax on planted classes, a factorization machine on the synthetic click
// log; their results, model files and predictions follow each model's
// metric; what they cannot run is a clear error.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "scheduler/job_internal.h"
#include "virga/datagen.h"
#include "virga/ingest.h"
#include "virga/model.h"
#include "virga/model_file.h"
#include "virga/train.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

std::string RunCli(const std::string& args, int* exit_code) {
  std::string out;
  FILE* p = ::popen((std::string(VIRGA_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// Rows of `classes` classes from a planted softmax over 20 dense features.
void WriteClasses(const std::string& path, int rows, int classes) {
  std::mt19937 rng(9);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> w(20 * classes);
  for (double& x : w) x = 1.5 * n(rng);
  std::ofstream out(path);
  for (int r = 0; r < rows; ++r) {
    double x[20], z[16], total = 0;
    for (double& v : x) v = n(rng);
    for (int c = 0; c < classes; ++c) {
      z[c] = 0;
      for (int j = 0; j < 20; ++j) z[c] += w[j * classes + c] * x[j];
      total += (z[c] = std::exp(z[c]));
    }
    double u = std::uniform_real_distribution<double>(0, total)(rng);
    int y = 0;
    while (y < classes - 1 && (u -= z[y]) > 0) ++y;
    out << y;
    for (int j = 0; j < 20; ++j) out << ' ' << j << ':' << x[j];
    out << '\n';
  }
}

class ModelJobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::temp_directory_path() / ("virga-model-jobs-" + std::to_string(getpid())));
    fs::remove_all(*dir_);  // a run that died with this pid left its files
    fs::create_directories(*dir_);
    auto store = ObjectStore::Open(Uri());
    ASSERT_TRUE(store.ok());
    RatingsGenOptions g;
    g.rows = 30000;
    g.users = 300;
    g.items = 200;
    g.rank = 4;
    g.noise = 0.3;
    g.out_path = *dir_ + "/r.tsv";
    auto gen = GenerateRatings(g);
    ASSERT_TRUE(gen.ok()) << gen.status().ToString();
    floor_ = gen->bayes_rmse;
    stddev_ = gen->label_stddev;
    IngestOptions io;
    io.format = Format::kRatings;
    io.inputs = {g.out_path};
    io.dataset = "ratings";
    io.test_fraction = 0.2;
    io.rows_per_partition = 2000;
    ASSERT_TRUE(Ingest(**store, io).ok());

    WriteClasses(*dir_ + "/c.libsvm", 4000, 3);
    io = IngestOptions{};
    io.format = Format::kLibsvm;
    io.inputs = {*dir_ + "/c.libsvm"};
    io.dataset = "classes";
    io.test_fraction = 0.2;
    io.rows_per_partition = 1000;
    io.parse.classes = 3;
    ASSERT_TRUE(Ingest(**store, io).ok());

    CriteoGenOptions c;
    c.rows = 8000;
    c.seed = 5;
    c.out_path = *dir_ + "/clicks.tsv";
    ASSERT_TRUE(GenerateCriteo(c).ok());
    io = IngestOptions{};
    io.format = Format::kCriteo;
    io.inputs = {c.out_path};
    io.dataset = "clicks";
    io.rows_per_partition = 2000;
    ASSERT_TRUE(Ingest(**store, io).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Uri() { return "file://" + *dir_ + "/store"; }
  static TrainOptions Options(const std::string& model, const std::string& dataset) {
    TrainOptions o;
    o.store = Uri();
    o.dataset = dataset;
    o.model = model;
    o.workers = 2;
    o.backend_config.settings["worker_binary"] = VIRGA_BINARY;
    o.eval_interval_seconds = 0.5;
    o.registry_dir = "-";
    return o;
  }
  static std::string* dir_;
  static double floor_, stddev_;
};
std::string* ModelJobsTest::dir_ = nullptr;
double ModelJobsTest::floor_ = 0, ModelJobsTest::stddev_ = 0;

TEST_F(ModelJobsTest, MatrixFactorizationLearnsPlantedRatings) {
  TrainOptions o = Options("mf", "ratings");
  o.rank = 8;
  o.epochs = 12;
  o.optimizer = TrainOptions::DefaultOptimizer();  // the model's defaults apply...
  auto defaults = TrainJob::Create(o);
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ((*defaults)->options().optimizer.kind, OptimizerKind::kAdagrad);  // ...here
  EXPECT_GT((*defaults)->options().optimizer.l2, 0.0f);
  defaults->reset();
  // This data is denser per user than MovieLens: less regularization (docs/models.md).
  o.optimizer = ModelInfoOf(ModelKind::kMatrixFactorization).optimizer;
  o.optimizer.l2 = 0.002f;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->metric, "rmse");
  EXPECT_EQ(r->width, 9u);
  // Near the noise floor (0.3; predicting the mean: ~0.8), not below it.
  EXPECT_LT(r->test_rmse, 1.25 * floor_) << "mean predictor " << stddev_;
  EXPECT_GT(r->test_rmse, floor_ * 0.95);
  EXPECT_EQ(r->test_metric, r->test_rmse);
  EXPECT_TRUE(std::isnan(r->test_logloss));
  const auto json = nlohmann::json::parse(TrainResultToJson(*r));
  EXPECT_EQ(json["metric"], "rmse");
  EXPECT_TRUE(json.contains("test_rmse") && json.contains("test_mae"));
  EXPECT_FALSE(json.contains("test_logloss"));
  EXPECT_TRUE(json["history"].back().contains("test_rmse"));

  // The model file has the table's width; predict scores it with the same RMSE.
  const std::string model = *dir_ + "/mf.vmdl";
  ASSERT_TRUE((*job)->SaveModel(model).ok());
  auto data = LoadModel(model);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->header.model, ModelKind::kMatrixFactorization);
  EXPECT_EQ(data->header.width, 9u);
  int code = -1;
  const std::string out = RunCli("predict --model-file " + model + " --store " + Uri() +
                                     " --dataset ratings --out " + *dir_ + "/mf.txt",
                                 &code);
  ASSERT_EQ(code, 0) << out;
  const size_t at = out.find("rmse ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_NEAR(std::stod(out.substr(at + 5)), r->test_rmse, 0.01) << out;
}

TEST_F(ModelJobsTest, SoftmaxLearnsPlantedClasses) {
  auto job = TrainJob::Create(Options("softmax", "classes"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metric, "logloss");
  EXPECT_EQ(r->width, 3u);  // classes from the labels
  EXPECT_LT(r->test_logloss, 0.6 * std::log(3.0));
  EXPECT_GT(r->test_accuracy, 0.75);
  const std::string model = *dir_ + "/sm.vmdl";
  ASSERT_TRUE((*job)->SaveModel(model).ok());
  int code = -1;
  const std::string out = RunCli("predict --model-file " + model + " --store " + Uri() +
                                     " --dataset classes --out " + *dir_ + "/sm.txt",
                                 &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("accuracy"), std::string::npos) << out;
  std::ifstream scores(*dir_ + "/sm.txt");
  std::string line;
  ASSERT_TRUE(std::getline(scores, line));
  double a, b, c;
  ASSERT_EQ(std::sscanf(line.c_str(), "%lf %lf %lf", &a, &b, &c), 3) << line;
  EXPECT_NEAR(a + b + c, 1.0, 1e-5);

  // More classes than the labels show is fine; fewer is a clear error.
  TrainOptions o = Options("softmax", "classes");
  o.classes = 2;
  auto bad = TrainJob::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("needs class labels 0..1"), std::string::npos)
      << bad.status().ToString();
}

TEST_F(ModelJobsTest, FactorizationMachinesTrainOnClicks) {
  for (auto [model, width] : {std::pair{"fm", 9u}, std::pair{"ffm", 1 + 39 * 4u}}) {
    SCOPED_TRACE(model);
    TrainOptions o = Options(model, "clicks");
    o.epochs = 2;
    auto job = TrainJob::Create(o);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    auto r = (*job)->Run();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->metric, "logloss");
    EXPECT_EQ(r->width, width);  // default ranks 8 and 4
    EXPECT_LT(r->test_logloss, 0.62);
    EXPECT_GT(r->test_auc, 0.6);
    const std::string file = *dir_ + "/" + model + ".vmdl";
    ASSERT_TRUE((*job)->SaveModel(file).ok());
    int code = -1;
    const std::string out =
        RunCli("predict --model-file " + file + " --store " + Uri() + " --dataset clicks", &code);
    ASSERT_EQ(code, 0) << out;
    const size_t at = out.find("logloss ");
    ASSERT_NE(at, std::string::npos) << out;
    EXPECT_NEAR(std::stod(out.substr(at + 8)), r->test_logloss, 0.01) << out;
  }
}

// The target: fm at least 0.004 below lr when the data has planted
// pairwise interactions (a linear model cannot fit them).
TEST_F(ModelJobsTest, FactorizationMachineBeatsLrOnPlantedInteractions) {
  CriteoGenOptions c;
  c.rows = 200000;
  c.seed = 1;
  c.interactions = 0.8;
  c.out_path = *dir_ + "/pairs.tsv";
  auto gen = GenerateCriteo(c);
  ASSERT_TRUE(gen.ok()) << gen.status().ToString();
  auto store = ObjectStore::Open(Uri());
  ASSERT_TRUE(store.ok());
  IngestOptions io;
  io.format = Format::kCriteo;
  io.inputs = {c.out_path};
  io.dataset = "pairs";
  io.rows_per_partition = 10000;
  ASSERT_TRUE(Ingest(**store, io).ok());
  double loss[2] = {0, 0};
  std::string how[2];
  for (int i = 0; i < 2; ++i) {
    auto job = TrainJob::Create(Options(i == 0 ? "lr" : "fm", "pairs"));
    ASSERT_TRUE(job.ok()) << job.status().ToString();
    auto r = (*job)->Run();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    loss[i] = r->test_logloss;
    how[i] = r->state + ", " + std::to_string(r->epochs) + " epochs, " +
             std::to_string(r->workers_launched) + " workers launched, " +
             std::to_string(r->train_seconds) + " s";
    EXPECT_GT(loss[i], gen->bayes_logloss - 0.02);
  }
  std::printf("planted interactions: lr %.4f (%s), fm %.4f (%s), Bayes %.4f\n", loss[0],
              how[0].c_str(), loss[1], how[1].c_str(), gen->bayes_logloss);
  EXPECT_LT(loss[1], loss[0] - 0.004) << "lr " << loss[0] << ", fm " << loss[1] << ", Bayes "
                                       << gen->bayes_logloss;
}

TEST(TableEstimate, AModelThatCannotFitIsAOneLineError) {
  Manifest m;
  m.num_features = uint64_t{1} << 20;
  sched::JobModel fm;
  fm.kind = ModelKind::kFactorizationMachine;
  fm.width = 9;
  OptimizerConfig ftrl;
  ftrl.kind = OptimizerKind::kFtrl;  // 2 state floats per weight: 27 floats, 120-byte cells
  EXPECT_EQ(sched::EstimateTableBytes(m, fm, ftrl), ((uint64_t{1} << 20) + 1) * 120 * 2);
  EXPECT_TRUE(sched::CheckTableFits(m, fm, ftrl, uint64_t{8} << 30).ok());
  Status s = sched::CheckTableFits(m, fm, ftrl, uint64_t{200} << 20);
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("model 'fm' of width 9 over 1048576 features needs about 0.3 GB"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST_F(ModelJobsTest, WhatAModelCannotDoIsAClearError) {
  auto lr = TrainJob::Create(Options("lr", "ratings"));
  ASSERT_FALSE(lr.ok());
  EXPECT_NE(lr.status().message().find("needs binary labels"), std::string::npos)
      << lr.status().ToString();
  int code = -1;
  std::string out = RunCli("train --store " + Uri() +
                               " --dataset ratings --model mf --workers 1 --channel store",
                           &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("cannot train model 'mf'"), std::string::npos) << out;
  // A label that is not a class: FILE:LINE.
  std::ofstream(*dir_ + "/bad.libsvm") << "0 1:1\n2 1:0.5\n";
  out = RunCli("ingest --format libsvm --classes 2 --input " + *dir_ + "/bad.libsvm --store " +
                   Uri() + " --dataset bad",
               &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("bad.libsvm:2: label 2 is not a class of 0..1"), std::string::npos) << out;
  // A rating that is not a number: FILE:LINE.
  std::ofstream(*dir_ + "/bad.tsv") << "1\t2\t3\n1\t2\tfour\t881250949\n";
  out = RunCli("ingest --format ratings --input " + *dir_ + "/bad.tsv --store " + Uri() +
                   " --dataset badratings",
               &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("bad.tsv:2: bad rating 'four'"), std::string::npos) << out;
  // An ffm table that cannot fit this machine (2^30 hashed features x 157 floats x ftrl state:
  // ~4 TB): a one-line error naming the estimate and the limit, before anything starts.
  CriteoGenOptions c;
  c.rows = 50;
  c.out_path = *dir_ + "/small.tsv";
  ASSERT_TRUE(GenerateCriteo(c).ok());
  out = RunCli("ingest --format criteo --hash-bits 30 --input " + c.out_path + " --store " +
                   Uri() + " --dataset wide",
               &code);
  ASSERT_EQ(code, 0) << out;
  out = RunCli("train --store " + Uri() + " --dataset wide --model ffm --workers 1", &code);
  EXPECT_NE(code, 0);
  const size_t at = out.find("train: model 'ffm' of width 157 over 1073741824 features needs about");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  EXPECT_NE(line.find("(ftrl state included), more than 80% of its"), std::string::npos) << line;
  EXPECT_NE(line.find("lower --rank, ingest with fewer --hash-bits"), std::string::npos) << line;
}

}  // namespace
}  // namespace virga
