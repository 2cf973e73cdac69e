// End to end: `virga predict` and `virga export` run as processes (the built
// CLI, path in VIRGA_BIN) on a tiny ingested dataset in a file:// store.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ps/server.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/metrics.h"
#include "virga/model_file.h"
#include "virga/partition.h"
#include "virga/ps_client.h"

namespace virga {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CliRun RunCli(const std::string& args) {
  CliRun r;
  FILE* p = ::popen((std::string(VIRGA_BIN) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The weight of each key in the test models, a function of the key.
float W(uint64_t key) { return key == kBiasKey ? -0.2f : static_cast<float>(key % 5) * 0.3f - 0.5f; }

class ModelCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("virga-model-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    uri_ = "file://" + (dir_ / "store").string();
    auto s = ObjectStore::Open(uri_);
    ASSERT_TRUE(s.ok());
    store_ = *s;
    Ingest("tiny", 0.3);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Ingest(const std::string& name, double test_fraction) {
    std::string text;
    for (int r = 0; r < 60; ++r) {
      text += r % 3 == 0 ? "+1" : "-1";
      for (int k = 1; k <= 1 + r % 4; ++k) text += " " + std::to_string(k * (r % 7 + 1)) + ":" + std::to_string(0.5 * k);
      text += "\n";
    }
    const std::string input = (dir_ / (name + ".libsvm")).string();
    std::ofstream(input) << text;
    IngestOptions o;
    o.format = Format::kLibsvm;
    o.inputs = {input};
    o.dataset = name;
    o.test_fraction = test_fraction;
    o.rows_per_partition = 7;
    auto report = virga::Ingest(*store_, o);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
  }

  // Probability of every test row under W, computed from the partitions.
  std::pair<std::vector<float>, std::vector<float>> Expected(const std::string& name, bool test) {
    std::vector<float> probs, labels;
    auto m = ReadManifest(*store_, name);
    EXPECT_TRUE(m.ok());
    PartitionBuffer buf;
    std::string bytes;
    for (const PartitionInfo& p : test ? m->test : m->train) {
      EXPECT_TRUE(store_->Get(p.key, &bytes).ok());
      EXPECT_TRUE(DecodePartition(bytes, p.key, &buf).ok());
      const RowBlockView v = buf.view();
      for (size_t r = 0; r < v.rows(); ++r) {
        double margin = W(kBiasKey);
        for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q)
          margin += (v.indices[q] % 2 ? W(v.indices[q]) : 0.0) * v.value(q);  // even keys absent
        probs.push_back(static_cast<float>(1 / (1 + std::exp(-margin))));
        labels.push_back(v.labels[r]);
      }
    }
    return {probs, labels};
  }

  // A model with the odd keys below 40 and the bias (even keys are missing: weigh 0).
  ModelData TestModel() {
    ModelData m;
    m.header.model = ModelKind::kLogisticRegression;
    m.header.dataset = "tiny";
    m.header.created_at = "2026-01-01T00:00:00Z";
    for (uint64_t k = 1; k < 40; k += 2) {
      m.keys.push_back(k);
      m.weights.push_back(W(k));
    }
    m.keys.push_back(kBiasKey);
    m.weights.push_back(W(kBiasKey));
    return m;
  }

  std::vector<float> ReadScores(const std::string& path) {
    std::ifstream in(path);
    std::vector<float> v;
    for (float x; in >> x;) v.push_back(x);
    return v;
  }

  void ExpectScoresAndMetrics(const CliRun& run, const std::string& out_path) {
    ASSERT_EQ(run.exit_code, 0) << run.output;
    auto [probs, labels] = Expected("tiny", true);
    const std::vector<float> got = ReadScores(out_path);
    ASSERT_EQ(got.size(), probs.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], probs[i], 1e-6) << i;
    // AUC depends on exact ties, which float rounding in the model's kernel
    // may break differently from this double-precision reference: take the
    // metrics of the scores predict wrote (%.9g round-trips a float exactly),
    // and the logloss of the reference too.
    const BinaryMetrics m = ComputeBinaryMetrics(got, labels);
    EXPECT_NEAR(ComputeBinaryMetrics(probs, labels).logloss, m.logloss, 1e-6);
    double logloss = 0, auc = 0, acc = 0;
    const size_t at = run.output.find("logloss ");
    ASSERT_NE(at, std::string::npos) << run.output;
    ASSERT_EQ(std::sscanf(run.output.c_str() + at, "logloss %lf auc %lf accuracy %lf", &logloss,
                          &auc, &acc),
              3)
        << run.output;
    EXPECT_NEAR(logloss, m.logloss, 1e-5);
    EXPECT_NEAR(auc, m.auc, 1e-5);
    EXPECT_NEAR(acc, m.accuracy, 1e-5);
  }

  fs::path dir_;
  std::string uri_;
  std::shared_ptr<ObjectStore> store_;
};

TEST_F(ModelCliTest, PredictScoresEveryTestRow) {
  const std::string model = (dir_ / "m.vm").string(), out = (dir_ / "p.tsv").string();
  ASSERT_TRUE(SaveModel(model, TestModel()).ok());
  CliRun run = RunCli("predict --model-file " + model + " --store " + uri_ +
                   " --dataset tiny --split test --out " + out);
  ExpectScoresAndMetrics(run, out);
  EXPECT_NE(run.output.find("scored"), std::string::npos) << run.output;
}

TEST_F(ModelCliTest, PredictErrorsNameTheProblem) {
  const std::string model = (dir_ / "m.vm").string();
  ASSERT_TRUE(SaveModel(model, TestModel()).ok());
  const std::string base = "predict --store " + uri_ + " ";

  CliRun missing = RunCli(base + "--model-file " + (dir_ / "nope.vm").string() + " --dataset tiny");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("nope.vm"), std::string::npos) << missing.output;

  std::string bytes;
  {
    std::ifstream in(model, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.size() - 20] ^= 4;
  const std::string bad = (dir_ / "bad.vm").string();
  std::ofstream(bad, std::ios::binary) << bytes;
  CliRun corrupt = RunCli(base + "--model-file " + bad + " --dataset tiny");
  EXPECT_NE(corrupt.exit_code, 0);
  EXPECT_NE(corrupt.output.find("bad.vm"), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find("checksum mismatch"), std::string::npos) << corrupt.output;

  const std::string cut = (dir_ / "cut.vm").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  CliRun truncated = RunCli(base + "--model-file " + cut + " --dataset tiny");
  EXPECT_NE(truncated.output.find("truncated"), std::string::npos) << truncated.output;

  CliRun no_ds = RunCli(base + "--model-file " + model + " --dataset absent");
  EXPECT_NE(no_ds.exit_code, 0);
  EXPECT_NE(no_ds.output.find("absent"), std::string::npos) << no_ds.output;

  CliRun split = RunCli(base + "--model-file " + model + " --dataset tiny --split dev");
  EXPECT_EQ(split.exit_code, 2);
  EXPECT_NE(split.output.find("--split"), std::string::npos) << split.output;

  Ingest("notest", 0.0);
  CliRun notest = RunCli(base + "--model-file " + model + " --dataset notest");
  EXPECT_NE(notest.exit_code, 0);
  EXPECT_NE(notest.output.find("--split train"), std::string::npos) << notest.output;
  CliRun train = RunCli(base + "--model-file " + model + " --dataset notest --split train");
  EXPECT_EQ(train.exit_code, 0) << train.output;
}

TEST_F(ModelCliTest, ExportThenPredict) {
  const std::string token = "model-cli-test-token";
  ps::PsServerOptions o;
  o.net.token = token;
  o.net.port = 0;
  o.net.spin = std::chrono::microseconds(0);
  ps::PsServer server(o);
  ASSERT_TRUE(server.Start().ok());
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  {
    PsClientOptions co;
    co.servers = {addr};
    co.token = token;
    auto client = PsClient::Connect(co);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    TableConfig t;
    t.name = "tiny-lr";
    const ModelData m = TestModel();
    std::vector<std::pair<uint64_t, std::vector<float>>> rows;
    for (size_t i = 0; i < m.keys.size(); ++i) rows.push_back({m.keys[i], {m.weights[i]}});
    ASSERT_TRUE((*client)->LoadTable(t, rows).ok());
  }
  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << token << "\n";
  fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write);

  const std::string model = (dir_ / "exported.vm").string(), out = (dir_ / "p.tsv").string();
  CliRun ex = RunCli("export --servers " + addr + " --token-file " + token_file +
                  " --table tiny-lr --model lr --out " + model + " --dataset tiny --store " + uri_);
  ASSERT_EQ(ex.exit_code, 0) << ex.output;
  auto loaded = LoadModel(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->keys, TestModel().keys);
  EXPECT_EQ(loaded->weights, TestModel().weights);
  EXPECT_EQ(loaded->header.dataset, "tiny");
  auto manifest = ReadManifest(*store_, "tiny");
  EXPECT_EQ(loaded->header.num_features, manifest->num_features);
  EXPECT_NE(loaded->header.training.find("\"table\":\"tiny-lr\""), std::string::npos)
      << loaded->header.training;

  CliRun run = RunCli("predict --model-file " + model + " --store " + uri_ +
                   " --dataset tiny --out " + out);
  ExpectScoresAndMetrics(run, out);

  // The same through the store: export to an object URI, predict from it.
  const std::string object = uri_ + "/models/exported.vmdl";
  CliRun to_store = RunCli("export --servers " + addr + " --token-file " + token_file +
                           " --table tiny-lr --model lr --out " + object);
  ASSERT_EQ(to_store.exit_code, 0) << to_store.output;
  auto stored = store_->Stat("models/exported.vmdl");
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  const std::string out2 = (dir_ / "p2.tsv").string();
  CliRun from_store = RunCli("predict --model-file " + object + " --store " + uri_ +
                             " --dataset tiny --out " + out2);
  ExpectScoresAndMetrics(from_store, out2);
  CliRun no_object = RunCli("predict --model-file " + uri_ + "/models/none.vmdl --store " + uri_ +
                            " --dataset tiny");
  EXPECT_NE(no_object.exit_code, 0);
  EXPECT_NE(no_object.output.find("models/none.vmdl"), std::string::npos) << no_object.output;

  CliRun absent = RunCli("export --servers " + addr + " --token-file " + token_file +
                      " --table nope --model lr --out " + (dir_ / "x.vm").string());
  EXPECT_NE(absent.exit_code, 0);
  EXPECT_NE(absent.output.find("nope"), std::string::npos) << absent.output;
  EXPECT_FALSE(fs::exists(dir_ / "x.vm"));
  CliRun svm_width = RunCli("export --servers " + addr + " --token-file " + token_file +
                         " --table tiny-lr --model gbdt --out " + (dir_ / "y.vm").string());
  EXPECT_EQ(svm_width.exit_code, 2) << svm_width.output;
  server.Stop();
}

}  // namespace
}  // namespace virga
