// TrainJob end to end with the real `virga worker` processes (VIRGA_BINARY).
#include <cmath>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/cpus.h"
#include "virga/datagen.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/model_file.h"
#include "virga/train.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `<env> virga <args>` through the shell.
CliRun RunCli(const std::string& args, const std::string& env = "") {
  CliRun r;
  FILE* p = ::popen((env + " " + VIRGA_BINARY + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TrainJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::temp_directory_path() / ("virga-train-test-" + std::to_string(getpid())));
    fs::remove_all(*dir_);  // a run that died with this pid left its files
    fs::create_directories(*dir_);
    CriteoGenOptions g;
    g.rows = 20000;
    g.seed = 3;
    g.out_path = *dir_ + "/d.tsv";
    ASSERT_TRUE(GenerateCriteo(g).ok());
    auto store = ObjectStore::Open(Uri());
    ASSERT_TRUE(store.ok());
    IngestOptions io;
    io.format = Format::kCriteo;
    io.inputs = {g.out_path};
    io.dataset = "d";
    io.rows_per_partition = 2048;
    auto r = Ingest(**store, io);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Uri() { return "file://" + *dir_ + "/store"; }
  static TrainOptions Options() {
    TrainOptions o;
    o.store = Uri();
    o.dataset = "d";
    o.workers = 2;
    o.backend_config.settings["worker_binary"] = VIRGA_BINARY;
    o.eval_interval_seconds = 0.2;
    o.registry_dir = *dir_ + "/jobs";
    return o;
  }
  static std::string* dir_;
};
std::string* TrainJobTest::dir_ = nullptr;

TEST_F(TrainJobTest, TrainsEveryItemOfEveryEpoch) {
  TrainOptions o = Options();
  o.epochs = 2;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->epochs, 2u);
  ASSERT_EQ(r->items_processed_per_epoch.size(), 2u);
  for (uint32_t n : r->items_processed_per_epoch) EXPECT_EQ(n, r->items_per_epoch);
  for (uint32_t n : r->partitions_processed_per_epoch) EXPECT_EQ(n, r->partitions);
  auto store = ObjectStore::Open(Uri());
  ASSERT_TRUE(store.ok());
  auto manifest = ReadManifest(**store, "d");
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(r->samples, 2 * manifest->train_rows);  // no item lost or repeated without faults
  EXPECT_EQ(r->items_reprocessed, 0u);
  EXPECT_LT(r->test_logloss, 0.6);
  EXPECT_GT(r->test_auc, 0.6);
  EXPECT_GT(r->updates, 0u);
  EXPECT_GE(r->workers_launched, 2u);
  EXPECT_EQ(r->workers_failed, 0u);
  EXPECT_GT(r->iteration.iterations, 0u);
  EXPECT_GT(r->iteration.p50_us, 0);
  EXPECT_FALSE(r->history.empty());
  EXPECT_GT(r->cost_total_usd, 0);
  // Traffic: every pulled key costs at least its 8-byte key and 4-byte weight, and every
  // sample touches at least one key; a sample costs far less than a kilobyte per feature.
  EXPECT_GT(r->bytes_received, 12 * r->iteration.iterations);
  EXPECT_GT(r->bytes_sent, 0u);
  const double per_sample = static_cast<double>(r->bytes_sent + r->bytes_received) / r->samples;
  EXPECT_GT(per_sample, 12.0);
  EXPECT_LT(per_sample, 40000.0);
  const std::string json = TrainResultToJson(*r);
  for (const char* field : {"test_logloss", "test_auc", "test_accuracy", "train_seconds",
                            "samples_per_second", "workers_launched", "workers_failed",
                            "partitions_processed_per_epoch", "iteration_us", "history",
                            "cost_estimate", "traffic", "bytes_per_sample"}) {
    EXPECT_NE(json.find(std::string("\"") + field + "\""), std::string::npos) << field;
  }
}

TEST_F(TrainJobTest, KillStopsTheJobAndItsWorkers) {
  TrainOptions o = Options();
  o.epochs = 1000;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok());
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    (*job)->Kill();
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*job)->Run();
  killer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "killed");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ASSERT_FALSE(r->functions.empty());
  for (const auto& f : r->functions) EXPECT_TRUE(IsTerminal(f.state)) << f.id;
}

TEST_F(TrainJobTest, RegistryListsTheJobAndKillFileStopsIt) {
  TrainOptions o = Options();
  o.epochs = 1000;
  o.job_id = "registry-test";
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok());
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto jobs = ListJobs(o.registry_dir);
    ASSERT_TRUE(jobs.ok());
    bool listed = false;
    for (const auto& e : *jobs) {
      if (e.job_id == "registry-test") {
        listed = true;
        EXPECT_TRUE(e.alive);
        EXPECT_EQ(e.pid, getpid());
      }
    }
    EXPECT_TRUE(listed);
    EXPECT_TRUE(RequestKill(o.registry_dir, "registry-test").ok());
  });
  auto r = (*job)->Run();
  killer.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, "killed");
  auto jobs = ListJobs(o.registry_dir);
  ASSERT_TRUE(jobs.ok());
  for (const auto& e : *jobs) {
    if (e.job_id == "registry-test") {
      EXPECT_EQ(e.state, "killed");
    }
  }
  EXPECT_TRUE(RequestKill(o.registry_dir, "no-such-job").IsNotFound());
}

TEST_F(TrainJobTest, DivergingRunIsStopped) {
  TrainOptions o = Options();
  o.epochs = 1000;
  o.optimizer.kind = OptimizerKind::kSgd;
  o.optimizer.learning_rate = 1e6;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok());
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, "diverged");
  EXPECT_FALSE((*job)->history().empty());
}

TEST_F(TrainJobTest, StopsAtTargetLossAndAtTimeLimit) {
  TrainOptions o = Options();
  o.epochs = 1000;
  o.target_loss = 0.65;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok());
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, "target_reached");
  EXPECT_LE(r->test_logloss, 0.65);

  o.target_loss = 0;
  o.time_limit_seconds = 1;
  auto job2 = TrainJob::Create(o);
  ASSERT_TRUE(job2.ok());
  auto r2 = (*job2)->Run();
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->state, "time_limit");
  EXPECT_GE(r2->train_seconds, 1.0);
}

TEST_F(TrainJobTest, WorkersThatAlwaysFailEndTheJob) {
  TrainOptions o = Options();
  o.backend_config.settings["worker_binary"] = "/bin/false";
  o.epochs = 1;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok());
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state.rfind("failed", 0), 0u) << r->state;
  EXPECT_GE(r->workers_failed, 3u * o.workers);
}

TEST_F(TrainJobTest, BadOptionsAreClearErrors) {
  TrainOptions o = Options();
  o.dataset = "absent";
  auto job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("absent"), std::string::npos);
  o = Options();
  o.model = "tree";
  job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("tree"), std::string::npos);
  // Workers 0: the backend's default (local: the CPUs, at most 4).
  o = Options();
  o.workers = 0;
  job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ((*job)->options().workers, std::min(UsableCpus(), 4u));
  // Negative or non-finite durations are refused, naming the option.
  o = Options();
  o.checkpoint_interval_seconds = -1;
  job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("checkpoint interval"), std::string::npos);
  o = Options();
  o.eval_interval_seconds = NAN;
  job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("evaluation interval"), std::string::npos);
}

TEST_F(TrainJobTest, ResultAndModelGoToTheStore) {
  TrainOptions o = Options();
  o.epochs = 1;
  o.job_id = "store-test";
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->backend, "local");
  auto store = ObjectStore::Open(Uri());
  ASSERT_TRUE(store.ok());
  std::string json;
  ASSERT_TRUE((*store)->Get(JobResultKey("store-test"), &json).ok());
  EXPECT_EQ(json, TrainResultToJson(*r) + "\n");
  EXPECT_EQ(nlohmann::json::parse(json)["backend"], "local");
  // Run itself keeps the model in the store (export/predict after the job's servers are gone).
  EXPECT_EQ(r->model_file, (*store)->uri() + "/" + JobModelKey("store-test"));
  EXPECT_EQ(nlohmann::json::parse(json)["model_file"], r->model_file);
  {
    auto kept = LoadModel(r->model_file);
    ASSERT_TRUE(kept.ok()) << kept.status().ToString();
    EXPECT_FALSE(kept->keys.empty());
  }

  // A model written to store URIs (file:// and mem://) and read back.
  for (const std::string& uri :
       {Uri() + "/" + JobModelKey("store-test"), std::string("mem://train-test/m.vmdl")}) {
    ASSERT_TRUE((*job)->SaveModel(uri).ok()) << uri;
    auto model = LoadModel(uri);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_FALSE(model->keys.empty());
    EXPECT_NE(model->header.training.find("\"job\":\"store-test\""), std::string::npos);
  }
  EXPECT_TRUE((*store)->Exists(JobModelKey("store-test")).value());
}

TEST_F(TrainJobTest, AResultThatCannotBeStoredFailsTheJob) {
  TrainOptions o = Options();
  o.epochs = 1;
  o.job_id = "unstorable";
  // A file where the job's key prefix should be a directory: the Put fails.
  fs::create_directories(*dir_ + "/store/jobs");
  std::ofstream(*dir_ + "/store/jobs/unstorable") << "in the way";
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("jobs/unstorable/result.json"), std::string::npos)
      << r.status().ToString();
  auto jobs = ListJobs(o.registry_dir);
  ASSERT_TRUE(jobs.ok());
  bool listed = false;
  for (const JobEntry& e : *jobs) {
    if (e.job_id != "unstorable") continue;
    listed = true;
    EXPECT_EQ(e.state.rfind("failed", 0), 0u) << e.state;
  }
  EXPECT_TRUE(listed);
  fs::remove(*dir_ + "/store/jobs/unstorable");
}

TEST_F(TrainJobTest, UnknownBackendIsAClearError) {
  TrainOptions o = Options();
  o.backend_config.name = "nosuch";
  auto job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().message(), "unknown compute backend 'nosuch' (known: local, lambda)");
  o = Options();
  o.backend_config.settings["region"] = "x";
  job = TrainJob::Create(o);
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("no setting 'region'"), std::string::npos);
}

TEST_F(TrainJobTest, CliUnknownBackendListsTheKnownOnes) {
  const std::string want = "unknown compute backend 'nosuch' (known: local, lambda)";
  CliRun train = RunCli("train --store " + Uri() + " --dataset d --backend nosuch");
  EXPECT_EQ(train.exit_code, 1);
  EXPECT_NE(train.output.find(want), std::string::npos) << train.output;
  CliRun search =
      RunCli("search --store " + Uri() + " --dataset d --grid learning_rate=0.1 --backend nosuch");
  EXPECT_EQ(search.exit_code, 1);
  EXPECT_NE(search.output.find(want), std::string::npos) << search.output;
  CliRun env = RunCli("train --store " + Uri() + " --dataset d", "VIRGA_BACKEND=nosuch");
  EXPECT_EQ(env.exit_code, 1);
  EXPECT_NE(env.output.find("'nosuch' (from $VIRGA_BACKEND)"), std::string::npos) << env.output;
}

TEST_F(TrainJobTest, CliTrainWritesItsResultToTheStore) {
  const std::string local = *dir_ + "/cli-train.json";
  const std::string model = Uri() + "/models/cli-train.vmdl";
  CliRun run = RunCli("train --store " + Uri() + " --dataset d --epochs 1 --workers 2 --quiet " +
                          "--job-id cli-train --json-out " + local + " --model-out " + model +
                          " --backend local --local-worker-binary " + VIRGA_BINARY,
                      "VIRGA_HOME=" + *dir_);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = ObjectStore::Open(Uri());
  ASSERT_TRUE(store.ok());
  std::string json;
  ASSERT_TRUE((*store)->Get(JobResultKey("cli-train"), &json).ok());
  EXPECT_EQ(json, ReadFile(local));  // the local copy is the same
  const nlohmann::json result = nlohmann::json::parse(json);
  EXPECT_EQ(result["job_id"], "cli-train");
  EXPECT_EQ(result["optimizer"]["name"], "ftrl");  // lr's defaults
  EXPECT_FLOAT_EQ(result["optimizer"]["learning_rate"].get<float>(), 0.05f);
  EXPECT_FLOAT_EQ(result["optimizer"]["ftrl_beta"].get<float>(), 0.15f);
  EXPECT_TRUE(LoadModel(model).ok());

  // --ftrl-beta and --learning-rate reach the job (and its result).
  CliRun tuned = RunCli("train --store " + Uri() + " --dataset d --epochs 1 --workers 1 --quiet " +
                            "--ftrl-beta 0.5 --learning-rate 0.2 --job-id cli-beta --json-out " +
                            *dir_ + "/cli-beta.json --backend local --local-worker-binary " +
                            VIRGA_BINARY,
                        "VIRGA_HOME=" + *dir_);
  ASSERT_EQ(tuned.exit_code, 0) << tuned.output;
  const nlohmann::json beta = nlohmann::json::parse(ReadFile(*dir_ + "/cli-beta.json"));
  EXPECT_FLOAT_EQ(beta["optimizer"]["ftrl_beta"].get<float>(), 0.5f);
  EXPECT_FLOAT_EQ(beta["optimizer"]["learning_rate"].get<float>(), 0.2f);
  CliRun bad = RunCli("train --store " + Uri() + " --dataset d --ftrl-beta 0 --quiet",
                      "VIRGA_HOME=" + *dir_);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("ftrl_beta"), std::string::npos) << bad.output;

  // A storage-channel job (no server) leaves its result in the store the same way.
  CliRun channel = RunCli("train --store " + Uri() + " --dataset d --epochs 1 --workers 2 " +
                              "--quiet --channel store --job-id cli-channel",
                          "VIRGA_HOME=" + *dir_);
  ASSERT_EQ(channel.exit_code, 0) << channel.output;
  ASSERT_TRUE((*store)->Get(JobResultKey("cli-channel"), &json).ok());
  EXPECT_EQ(nlohmann::json::parse(json)["state"], "done");
}

TEST_F(TrainJobTest, CliSearchWritesItsSummaryToTheStore) {
  CliRun run = RunCli("search --store " + Uri() + " --dataset d --grid learning_rate=0.05,0.1 " +
                      "--epochs 1 --workers 1 --quiet --search-id search-test --registry " +
                      *dir_ + "/jobs");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto store = ObjectStore::Open(Uri());
  ASSERT_TRUE(store.ok());
  std::string text;
  ASSERT_TRUE((*store)->Get(SearchResultKey("search-test"), &text).ok());
  const auto summary = nlohmann::json::parse(text);
  EXPECT_EQ(summary["search_id"], "search-test");
  EXPECT_EQ(summary["backend"], "local");
  ASSERT_EQ(summary["experiments"].size(), 2u);
  for (const auto& e : summary["experiments"]) {  // every experiment's own result too
    const std::string job = e["job_id"];
    EXPECT_TRUE((*store)->Exists(JobResultKey(job)).value()) << job;
  }
}

}  // namespace
}  // namespace virga
