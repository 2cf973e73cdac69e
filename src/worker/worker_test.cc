// End-to-end: workers train logistic regression against an in-process
// parameter server on a synthetic dataset in a mem:// store.
#include "virga/worker.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "models/key_map.h"
#include "ps/server.h"
#include "virga/dataset.h"
#include "virga/model.h"
#include "virga/partition.h"
#include "virga/ps_client.h"
#include "worker/heartbeat.h"

namespace virga {
namespace {

constexpr char kToken[] = "worker-test-token";
constexpr uint32_t kFeatures = 400;

struct Part {
  std::string key;
  uint64_t rows = 0;
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("VIRGA_FUNCTION_LIFETIME_MS");
    ::unsetenv("VIRGA_FUNCTION_ID");
    ps::PsServerOptions o;
    o.net.token = kToken;
    o.net.port = 0;
    server_ = std::make_unique<ps::PsServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    client_ = Connect();
    ASSERT_TRUE(client_);
    store_uri_ = std::string("mem://worker-test-") +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = ObjectStore::Open(store_uri_);
    ASSERT_TRUE(s.ok());
    store_ = *s;
  }

  std::unique_ptr<PsClient> Connect() {
    PsClientOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(server_->port())};
    o.token = kToken;
    auto c = PsClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Rows with `per_row` distinct binary features whose labels follow a
  // random true linear model (so a trained LR beats log 2 by far). The last
  // partition is empty when `empty_last`.
  void WriteDataset(size_t partitions, size_t rows, size_t per_row, bool empty_last = false) {
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.0f, 1.2f);
    std::vector<float> truth(kFeatures);
    for (float& w : truth) w = nd(rng);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    Manifest m;
    m.name = "synth";
    m.format = "libsvm";
    m.codec = "lz4";
    m.num_features = kFeatures;
    for (size_t p = 0; p < partitions; ++p) {
      RowBlock b;
      const size_t n = empty_last && p + 1 == partitions ? 0 : rows;
      for (size_t r = 0; r < n; ++r) {
        float margin = -0.3f;
        const uint32_t start = static_cast<uint32_t>(rng() % kFeatures);
        for (size_t k = 0; k < per_row; ++k) {
          const uint32_t f = static_cast<uint32_t>((start + k * 37) % kFeatures);
          b.AddFeature(f, 1.0f);
          margin += truth[f];
        }
        b.EndRow(u(rng) < 1.0f / (1.0f + std::exp(-margin)) ? 1.0f : 0.0f);
      }
      std::string bytes;
      ASSERT_TRUE(EncodePartition(b.view(), {}, &bytes).ok());
      const std::string key = PartitionKey(m.name, false, p);
      ASSERT_TRUE(store_->Put(key, bytes).ok());
      m.train.push_back({key, b.rows(), b.nnz(), bytes.size()});
      m.train_rows += b.rows();
      parts_.push_back({key, b.rows()});
      blocks_.push_back(std::move(b));
    }
    ASSERT_TRUE(WriteManifest(*store_, m).ok());
  }

  void CreateTable(const std::string& name, uint32_t width = 1) {
    TableConfig t;
    t.name = name;
    t.width = width;
    t.optimizer.kind = OptimizerKind::kAdagrad;
    t.optimizer.learning_rate = 0.3f;
    ASSERT_TRUE(client_->CreateTable(t).ok());
  }

  // Each partition split in `splits` items per epoch (the last one running
  // past the partition's end, which the worker clamps); creates the acks vector.
  void Enqueue(const std::string& job, uint32_t epochs, uint32_t splits) {
    std::vector<std::string> items;
    for (uint32_t e = 0; e < epochs; ++e) {
      for (const Part& p : parts_) {
        const uint64_t step = std::max<uint64_t>(1, (p.rows + splits - 1) / splits);
        for (uint32_t s = 0; s < splits; ++s) {
          const uint64_t begin = s * step, end = s + 1 == splits ? p.rows + 5 : (s + 1) * step;
          items.push_back(std::to_string(e) + " " + std::to_string(items.size()) + " " + p.key +
                          " " + std::to_string(begin) + " " + std::to_string(end));
        }
      }
    }
    ASSERT_TRUE(client_->Enqueue(job + ".q", items).ok());
    std::vector<float> zeros(items.size(), 0.0f);
    ASSERT_TRUE(client_->AddFloats(job + "/acks", zeros).ok());
    items_ = static_cast<uint32_t>(items.size());
  }

  WorkerPayload Payload(const std::string& job, uint32_t epochs) {
    WorkerPayload p;
    p.job = job;
    p.servers = {"127.0.0.1:" + std::to_string(server_->port())};
    p.token = kToken;
    p.store = store_uri_;
    p.dataset = "synth";
    p.table = job + ".w";
    p.queue = job + ".q";
    p.minibatch = 20;
    p.epochs = epochs;
    p.items = items_;
    p.lease_ms = 5000;
    p.max_idle_ms = 300;
    return p;
  }

  std::vector<float> Acks(const std::string& job) {
    std::vector<float> zeros(items_, 0.0f), acks;
    EXPECT_TRUE(client_->AddFloats(job + "/acks", zeros, &acks).ok());
    return acks;
  }

  // Mean logloss of the table's model over every stored row.
  double LogLoss(const std::string& table) {
    auto model = MakeModel(ModelKind::kLogisticRegression);
    KeyMap keys;
    double loss = 0;
    uint64_t rows = 0;
    for (const RowBlock& b : blocks_) {
      if (b.rows() == 0) continue;
      keys.Build(b.view());
      std::vector<float> w(keys.num_slots()), p(b.rows());
      EXPECT_TRUE(client_->Pull(table, keys.keys(), w).ok());
      model->Predict(keys.Batch(b.view()), w, p);
      for (size_t r = 0; r < b.rows(); ++r) {
        const double q = std::clamp<double>(b.labels()[r] > 0 ? p[r] : 1 - p[r], 1e-12, 1.0);
        loss -= std::log(q);
      }
      rows += b.rows();
    }
    return loss / static_cast<double>(rows);
  }

  uint64_t TotalRows() const {
    uint64_t n = 0;
    for (const Part& p : parts_) n += p.rows;
    return n;
  }

  void TwoWorkers(uint32_t local_steps);

  std::unique_ptr<ps::PsServer> server_;
  std::unique_ptr<PsClient> client_;
  std::string store_uri_;
  std::shared_ptr<ObjectStore> store_;
  std::vector<Part> parts_;
  std::vector<RowBlock> blocks_;
  uint32_t items_ = 0;
};

std::future<Result<WorkerResult>> Start(const WorkerPayload& p) {
  return std::async(std::launch::async, [p] { return RunWorker(p); });
}

// Two workers over 3 epochs of 12 items (an empty one included): every item
// acked once, losses falling (TwoWorkers below).
TEST_F(WorkerTest, TwoWorkersTrainEveryItemOfThreeEpochs) { TwoWorkers(1); }

// The same with local steps: rounds of 8 minibatches.
TEST_F(WorkerTest, TwoWorkersWithLocalStepsTrainEveryItemOfThreeEpochs) { TwoWorkers(8); }

// With local steps one worker trains exactly what pushing every minibatch
// would (the synchronous schedule: every pull after the previous push): its
// rounds' early pulls get their previous round's delta, the server adds them.
TEST_F(WorkerTest, LocalStepsOfOneWorkerEqualItsMinibatchPushes) {
  WriteDataset(3, 700, 10);
  for (const char* job : {"seq", "loc"}) {
    CreateTable(std::string(job) + ".w");
    Enqueue(job, 2, 2);
    WorkerPayload p = Payload(job, 2);
    p.optimizer.kind = OptimizerKind::kAdagrad;  // the table's (CreateTable)
    p.optimizer.learning_rate = 0.3f;
    if (std::string(job) == "seq") {
      p.staleness = 0;
    } else {
      p.local_steps = 16;
    }
    Result<WorkerResult> r = RunWorker(p);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->end_reason, "done");
    EXPECT_EQ(r->items_acked, items_);
  }
  std::vector<std::pair<uint64_t, std::vector<float>>> seq, loc;
  ASSERT_TRUE(client_->DumpTable("seq.w", &seq).ok());
  ASSERT_TRUE(client_->DumpTable("loc.w", &loc).ok());
  ASSERT_EQ(seq.size(), loc.size());
  ASSERT_GT(seq.size(), 100u);
  for (size_t i = 0; i < seq.size(); ++i) {
    ASSERT_EQ(seq[i].first, loc[i].first);
    EXPECT_NEAR(loc[i].second[0], seq[i].second[0], 1e-4 * (1 + std::fabs(seq[i].second[0])))
        << "key " << seq[i].first;
  }
  EXPECT_NEAR(LogLoss("loc.w"), LogLoss("seq.w"), 1e-4);
}

void WorkerTest::TwoWorkers(uint32_t local_steps) {
  WriteDataset(6, 500, 12, /*empty_last=*/true);
  CreateTable("lr.w");
  Enqueue("lr", 3, 2);
  const double before = LogLoss("lr.w");
  EXPECT_NEAR(before, std::log(2.0), 1e-6);
  WorkerPayload p = Payload("lr", 3);
  p.optimizer.kind = OptimizerKind::kAdagrad;  // the table's (CreateTable)
  p.optimizer.learning_rate = 0.3f;
  p.local_steps = local_steps;
  auto a = Start(p), b = Start(p);
  Result<WorkerResult> ra = a.get(), rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  for (const WorkerResult* r : {&*ra, &*rb}) {
    EXPECT_EQ(r->end_reason, "done");
    EXPECT_EQ(r->items_lost, 0u);
    EXPECT_EQ(r->items_rejected, 0u);
    EXPECT_GT(r->times.iterations, 0u);
    EXPECT_GT(r->times.p50_us, 0.0);
    EXPECT_GE(r->times.p99_us, r->times.p50_us);
    EXPECT_EQ(r->epoch_samples.size(), 3u);
  }
  EXPECT_EQ(ra->items_acked + rb->items_acked, items_);
  EXPECT_EQ(ra->samples + rb->samples, 3 * TotalRows());
  // Every item counted exactly once (no faults here), empty ones included.
  const std::vector<float> acks = Acks("lr");
  ASSERT_EQ(acks.size(), items_);
  for (size_t i = 0; i < acks.size(); ++i) EXPECT_EQ(acks[i], 1.0f) << "item " << i;
  auto q = client_->QueueStats("lr.q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->acked, items_);
  EXPECT_EQ(q->pending + q->leased, 0u);
  // Training loss falls epoch over epoch; the model beats log 2 clearly.
  std::vector<double> epoch_loss(3);
  for (int e = 0; e < 3; ++e) {
    const uint64_t n = ra->epoch_samples[e] + rb->epoch_samples[e];
    ASSERT_EQ(n, TotalRows());
    epoch_loss[e] = (ra->epoch_loss[e] + rb->epoch_loss[e]) / static_cast<double>(n);
  }
  EXPECT_LT(epoch_loss[1], epoch_loss[0]);
  EXPECT_LT(epoch_loss[2], epoch_loss[1]);
  const double after = LogLoss("lr.w");
  std::printf("epoch train loss %.4f %.4f %.4f, final logloss %.4f; iteration p50 %.1f us p99 %.1f us "
              "(data %.1f pull %.1f compute %.1f push %.1f)\n",
              epoch_loss[0], epoch_loss[1], epoch_loss[2], after, ra->times.p50_us, ra->times.p99_us,
              ra->times.data_wait_us, ra->times.pull_us, ra->times.compute_us, ra->times.push_us);
  EXPECT_LT(after, 0.55) << "epoch losses " << epoch_loss[0] << " " << epoch_loss[1] << " "
                         << epoch_loss[2];
  // Live stats were published under <job>/fn/<id>.
  std::string live;
  ASSERT_TRUE(client_->Get("lr/fn/0", &live).ok());
  EXPECT_TRUE(ResultFromJson(live).ok());
}

TEST_F(WorkerTest, LifetimeEndReleasesTheLeaseForAnotherWorker) {
  // One big item per partition, minibatch 1: far longer than the lifetime.
  WriteDataset(2, 20000, 5);
  CreateTable("life.w");
  Enqueue("life", 1, 1);
  WorkerPayload p = Payload("life", 1);
  p.minibatch = 1;
  p.lifetime_ms = 300;  // stops at 270 ms (10% margin)
  const auto t0 = std::chrono::steady_clock::now();
  Result<WorkerResult> first = RunWorker(p);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->end_reason, "lifetime");
  EXPECT_GE(first->items_released, 1u);
  EXPECT_EQ(first->items_acked, 0u);
  EXPECT_GT(first->samples, 0u);
  EXPECT_LT(took, 0.3) << "stopped after the lifetime";
  auto q = client_->QueueStats("life.q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->leased, 0u);
  EXPECT_EQ(q->pending, items_);
  // Another worker (no lifetime) does it all.
  p.lifetime_ms = 0;
  p.minibatch = 200;
  Result<WorkerResult> second = RunWorker(p);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->end_reason, "done");
  EXPECT_EQ(second->items_acked, items_);
  for (float a : Acks("life")) EXPECT_EQ(a, 1.0f);
}

TEST_F(WorkerTest, StopKeyStopsAndReleases) {
  WriteDataset(2, 20000, 5);
  CreateTable("stop.w");
  Enqueue("stop", 1, 1);
  WorkerPayload p = Payload("stop", 1);
  p.minibatch = 1;
  auto w = Start(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(client_->Put("stop/stop", "1").ok());
  Result<WorkerResult> r = w.get();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->end_reason, "stopped");
  EXPECT_LT(took, 0.6);
  EXPECT_GE(r->items_released, 1u);
  auto q = client_->QueueStats("stop.q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->leased, 0u);
  EXPECT_EQ(q->pending + q->acked, items_);
}

TEST_F(WorkerTest, StopsWhenItsDriverLeaseStops) {
  // The driver rewrites <job>/driver while it lives; once the value stops
  // changing the worker ends "orphaned" within driver_timeout_ms plus a
  // beat, releasing its leases, and its heartbeat key beat meanwhile.
  WriteDataset(4, 50000, 5);
  CreateTable("orph.w");
  Enqueue("orph", 1, 1);
  WorkerPayload p = Payload("orph", 1);
  p.minibatch = 1;
  p.driver_timeout_ms = 1000;
  ::setenv("VIRGA_FUNCTION_ID", "7", 1);
  auto w = Start(p);
  std::set<std::string> beats;
  const auto t_start = std::chrono::steady_clock::now();
  // Long enough for several beats however slowly the worker starts on a loaded machine.
  for (int n = 0; std::chrono::steady_clock::now() - t_start < std::chrono::milliseconds(2500); ++n) {
    ASSERT_TRUE(client_->Put(JobDriverKey("orph"), std::to_string(n)).ok());
    std::string beat;
    if (client_->Get(FunctionHeartbeatKey("orph", 7), &beat).ok()) beats.insert(beat);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Still training while the lease is kept.
  if (w.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    auto early = w.get();
    FAIL() << "ended early: " << (early.ok() ? early->end_reason + " " + std::to_string(early->samples) : early.status().ToString());
  }
  const auto t0 = std::chrono::steady_clock::now();
  Result<WorkerResult> r = w.get();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::unsetenv("VIRGA_FUNCTION_ID");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->end_reason, "orphaned");
  EXPECT_LT(took, 2.0);
  EXPECT_GE(beats.size(), 2u);  // a beat every 500 ms
  auto q = client_->QueueStats("orph.q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->leased, 0u);
}

TEST_F(WorkerTest, HeartbeatReadsTheStopKeyEveryPollBetweenBeats) {
  // Beats every 10 s, control keys every 50 ms: a stop is seen within a few
  // polls, and the beat key is written once meanwhile.
  using std::chrono::milliseconds;
  WorkerPayload p = Payload("hbpoll", 1);
  p.driver_timeout_ms = 0;
  worker::Control control(worker::Clock::now() + std::chrono::hours(1), milliseconds(1000));
  worker::Heartbeat beat(p, Connect(), &control, 9, milliseconds(10'000), milliseconds(50));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(control.stop_requested());
  ASSERT_TRUE(client_->Put(JobStopKey("hbpoll"), "stop").ok());
  const auto t0 = worker::Clock::now();
  while (!control.stop_requested() && worker::Clock::now() - t0 < milliseconds(2000))
    std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(control.stop_requested());
  EXPECT_LT(worker::Clock::now() - t0, milliseconds(1000));
  std::string value;
  ASSERT_TRUE(client_->Get(FunctionHeartbeatKey("hbpoll", 9), &value).ok());
  EXPECT_EQ(value, "1");
}

TEST(DriverWatch, ExpiresOnlyOnAnUnchangedValue) {
  using std::chrono::milliseconds;
  worker::DriverWatch w(milliseconds(1000));
  const auto t = worker::Clock::now();
  EXPECT_FALSE(w.Observe("1", t));
  EXPECT_FALSE(w.Observe("1", t + milliseconds(900)));
  EXPECT_FALSE(w.Observe("2", t + milliseconds(1500)));  // changed: alive
  EXPECT_FALSE(w.Observe("2", t + milliseconds(2400)));
  EXPECT_TRUE(w.Observe("2", t + milliseconds(2500)));
  worker::DriverWatch absent(milliseconds(1000));  // a key never written (or deleted) expires too
  EXPECT_FALSE(absent.Observe(std::nullopt, t));
  EXPECT_TRUE(absent.Observe(std::nullopt, t + milliseconds(1000)));
  worker::DriverWatch off(milliseconds(0));
  EXPECT_FALSE(off.Observe("1", t));
  EXPECT_FALSE(off.Observe("1", t + std::chrono::hours(1)));
}

TEST_F(WorkerTest, SynchronousModeFinishes) {
  WriteDataset(4, 300, 8);
  CreateTable("sync.w");
  Enqueue("sync", 2, 1);
  WorkerPayload p = Payload("sync", 2);
  p.staleness = 0;
  p.workers = 2;
  auto a = Start(p), b = Start(p);
  Result<WorkerResult> ra = a.get(), rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(ra->end_reason, "done");
  EXPECT_EQ(rb->end_reason, "done");
  EXPECT_EQ(ra->items_acked + rb->items_acked, items_);
  EXPECT_EQ(ra->samples + rb->samples, 2 * TotalRows());
  for (float x : Acks("sync")) EXPECT_EQ(x, 1.0f);
  EXPECT_LT(LogLoss("sync.w"), std::log(2.0));
}

TEST_F(WorkerTest, SurvivesAServerRestartFromACheckpoint) {
  // A server with checkpoints, restarted on the same port while a worker
  // trains: the worker retries until it is back, its lease died with the
  // restart (the ack is refused: lost), and the item is redone.
  client_.reset();
  server_->Stop();
  ps::PsServerOptions o;
  o.net.token = kToken;
  o.net.port = 0;
  o.checkpoint_uri = "mem://worker-test-ckpt";
  o.name = "restart";
  server_ = std::make_unique<ps::PsServer>(o);
  ASSERT_TRUE(server_->Start().ok());
  client_ = Connect();
  WriteDataset(2, 20000, 5);
  CreateTable("rs.w");
  Enqueue("rs", 1, 1);
  ASSERT_TRUE(server_->Checkpoint().ok());
  WorkerPayload p = Payload("rs", 1);
  p.minibatch = 1;
  p.max_idle_ms = 500;
  auto w = Start(p);
  for (int i = 0; i < 500; ++i) {  // until the worker holds its leases
    auto q = client_->QueueStats("rs.q");
    if (q.ok() && q->leased == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  o.net.port = server_->port();
  o.restore = true;
  client_.reset();
  server_->Stop();
  server_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server_ = std::make_unique<ps::PsServer>(o);
  ASSERT_TRUE(server_->Start().ok());
  client_ = Connect();
  Result<WorkerResult> r = w.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->end_reason, "done");
  EXPECT_GT(r->server_faults, 0u);
  EXPECT_GE(r->items_lost, 1u);
  auto q = client_->QueueStats("rs.q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->acked, items_);
  EXPECT_EQ(q->pending + q->leased, 0u);
  for (float a : Acks("rs")) EXPECT_GE(a, 1.0f);
}

TEST_F(WorkerTest, IdleWorkerIsDone) {
  WriteDataset(1, 10, 3);
  CreateTable("idle.w");
  WorkerPayload p = Payload("idle", 1);
  p.max_idle_ms = 100;
  Result<WorkerResult> r = RunWorker(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->end_reason, "done");
  EXPECT_EQ(r->samples, 0u);
}

TEST_F(WorkerTest, SetupErrorsAreReturned) {
  WriteDataset(1, 10, 3);
  CreateTable("wide.w", /*width=*/2);
  WorkerPayload p = Payload("wide", 1);
  Result<WorkerResult> r = RunWorker(p);
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  p.table = "missing.w";
  EXPECT_TRUE(RunWorker(p).status().IsNotFound());
  p.dataset = "nope";
  EXPECT_TRUE(RunWorker(p).status().IsNotFound());
  p.minibatch = 0;
  EXPECT_TRUE(RunWorker(p).status().IsInvalidArgument());
}

TEST_F(WorkerTest, MalformedItemsAreRejected) {
  WriteDataset(1, 50, 3);
  CreateTable("bad.w");
  std::vector<std::string> items = {"0 0 " + parts_[0].key + " 0 50", "garbage", "5 1 x 0 1"};
  ASSERT_TRUE(client_->Enqueue("bad.q", items).ok());
  items_ = 2;
  WorkerPayload p = Payload("bad", 1);
  Result<WorkerResult> r = RunWorker(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->items_acked, 1u);
  EXPECT_EQ(r->items_rejected, 2u);
  EXPECT_EQ(r->samples, 50u);
}

}  // namespace
}  // namespace virga
