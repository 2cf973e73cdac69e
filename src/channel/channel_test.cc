// Unit tests of the storage channel: records, plan, the reduce, and slots
// run as threads over a mem:// store (lost slots, crashes and resumes).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "channel/channel_store.h"
#include "channel/channel_worker.h"
#include "channel/plan.h"
#include "channel/records.h"
#include "channel/reduce.h"
#include "models/key_map.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/model.h"
#include "virga/partition.h"

namespace virga::channel {
namespace {

using Clock = std::chrono::steady_clock;

// ---- records ---------------------------------------------------------------

TEST(ChannelRecords, RoundTripAndCorruptionNamesKey) {
  ModelChunkHeader h{7, 1, 3, 4, {{0, 5}, {2, 9}}};
  std::vector<float> w = {1, 2, 3, 4};
  std::string bytes;
  EncodeModelChunk(h, w, &bytes);
  std::vector<float> dense(10, 0);
  ModelChunkHeader got{7, 1, 3, 4, {}};
  ASSERT_TRUE(DecodeModelChunk(bytes, "k", &got, dense).ok());
  EXPECT_EQ(got.included, h.included);
  EXPECT_EQ(dense[3], 1);
  EXPECT_EQ(dense[6], 4);
  ModelChunkHeader wrong{8, 1, 3, 4, {}};
  Status s = DecodeModelChunk(bytes, "channel/j/model/8/1", &wrong, dense);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("channel/j/model/8/1"), std::string::npos) << s.message();
  bytes[10] ^= 1;
  EXPECT_TRUE(DecodeModelChunk(bytes, "k", &got, dense).IsCorruption());

  GradHeader gh{3, 1, 2, 17, 200, 12.5};
  std::vector<uint32_t> idx = {0, 5, 9};
  std::vector<float> val = {0.5f, -1, 2};
  EncodeGrad(gh, idx, val, &bytes);
  GradHeader g2;
  std::vector<uint32_t> i2;
  std::vector<float> v2;
  ASSERT_TRUE(DecodeGrad(bytes, "g", &g2, &i2, &v2).ok());
  EXPECT_EQ(g2.pos, 17u);
  EXPECT_EQ(g2.loss, 12.5);
  EXPECT_EQ(i2, idx);
  EXPECT_EQ(v2, val);

  Cursor c;
  c.round = 12;
  c.inflight = 4;
  c.next = 5;
  c.redo = {1, 3};
  c.done = {1, 0, 2, 0, 0};
  c.samples = 900;
  Cursor c2;
  ASSERT_TRUE(DecodeCursor(EncodeCursor(c), "c", &c2).ok());
  EXPECT_EQ(c2.round, 12u);
  EXPECT_EQ(c2.redo, c.redo);
  EXPECT_EQ(c2.done, c.done);
  EXPECT_TRUE(DecodeCursor("short", "cursor/0", &c2).IsCorruption());
}

TEST(ChannelLayout, ChunksCoverTheVector) {
  Layout l("j", 1001, 3);
  EXPECT_EQ(l.ChunkBegin(0), 0u);
  EXPECT_EQ(l.ChunkBegin(3), 1001u);
  uint64_t total = 0;
  for (uint32_t c = 0; c < 3; ++c) total += l.ChunkSize(c);
  EXPECT_EQ(total, 1001u);
  for (uint64_t i = 0; i < 1001; ++i) {
    const uint32_t c = l.ChunkOf(i);
    EXPECT_GE(i, l.ChunkBegin(c));
    EXPECT_LT(i, l.ChunkBegin(c + 1));
  }
}

// ---- plan ------------------------------------------------------------------

TEST(ChannelPlan, EveryItemOnceAndBalanced) {
  std::vector<PartitionInfo> parts(5);
  for (size_t i = 0; i < parts.size(); ++i) parts[i].rows = 1000 + 37 * i;
  parts[2].rows = 0;
  const ChannelPlan plan = PlanChannel(parts, 3, 4, 128, 9);
  std::multiset<uint32_t> ids;
  for (const auto& list : plan.slots) {
    for (const ChannelItem& it : list) {
      ids.insert(it.id);
      EXPECT_LT(it.begin, it.end);
      EXPECT_LE(it.end, parts[it.partition].rows);
    }
  }
  EXPECT_EQ(ids.size(), 3u * plan.items_per_epoch);
  for (uint32_t id = 0; id < 3 * plan.items_per_epoch; ++id) EXPECT_EQ(ids.count(id), 1u) << id;
  for (const auto& list : plan.slots) {
    EXPECT_GE(list.size() + 3, 3 * plan.items_per_epoch / 4);
    EXPECT_LE(list.size(), 3 * plan.items_per_epoch / 4 + 3);
  }
}

// ---- reduce ----------------------------------------------------------------

TEST(ChunkReducer, SumMatchesReferenceAndSgdApplies) {
  OptimizerConfig sgd;
  sgd.kind = OptimizerKind::kSgd;
  sgd.learning_rate = 0.5f;
  const uint64_t size = 1000;
  ChunkReducer r(sgd, size);
  std::mt19937 rng(3);
  std::vector<double> ref(size, 0.0);
  r.Begin(size);
  for (int slot = 0; slot < 4; ++slot) {
    std::vector<uint32_t> idx;
    std::vector<float> val;
    for (uint32_t i = 0; i < size; ++i) {
      if (rng() % 3 == 0) {
        idx.push_back(i);
        val.push_back(static_cast<float>(static_cast<int>(rng() % 200) - 100) / 64.0f);
        ref[i] += val.back();
      }
    }
    ASSERT_TRUE(r.Add(idx, val));
  }
  const std::vector<uint32_t> bad = {static_cast<uint32_t>(size)};
  const std::vector<float> one = {1.0f};
  EXPECT_FALSE(r.Add(bad, one));
  for (uint32_t i = 0; i < size; ++i) EXPECT_FLOAT_EQ(r.sum(i), static_cast<float>(ref[i])) << i;
  std::vector<float> w(size, 1.0f);
  r.Apply(0.5f, w, {});
  for (uint32_t i = 0; i < size; ++i) EXPECT_FLOAT_EQ(w[i], static_cast<float>(1.0 - 0.5 * ref[i])) << i;
  EXPECT_EQ(r.touched(), 0u);  // cleared for the next reduce
}

// ---- slots over a mem:// store ---------------------------------------------

// A small planted-model libsvm set ingested into mem://<name>.
struct Fixture {
  std::string store_uri;
  std::shared_ptr<ObjectStore> store;
  Manifest manifest;

  explicit Fixture(const std::string& name, int rows = 3000) {
    store_uri = "mem://" + name;
    store = ObjectStore::Open(store_uri).value();
    const auto dir = std::filesystem::temp_directory_path() / ("virga-chan-" + name);
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "data.svm").string();
    std::ofstream f(path);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(0, 1);
    for (int i = 0; i < rows; ++i) {
      int a = static_cast<int>(rng() % 40), b = 40 + static_cast<int>(rng() % 40);
      const double z = (a < 20 ? 1.5 : -1.5) + (b < 60 ? 0.8 : -0.8);
      const int y = u(rng) < 1 / (1 + std::exp(-z)) ? 1 : 0;
      f << y << " " << a << ":1 " << b << ":1\n";
    }
    f.close();
    IngestOptions io;
    io.format = Format::kLibsvm;
    io.inputs = {path};
    io.dataset = "d";
    io.rows_per_partition = 500;
    io.test_fraction = 0.1;
    auto rep = Ingest(*store, io);
    EXPECT_TRUE(rep.ok()) << rep.status().ToString();
    manifest = ReadManifest(*store, "d").value();
    std::filesystem::remove_all(dir);
  }

  ChannelPayload Payload(const std::string& job, uint32_t workers, uint32_t epochs) const {
    ChannelPayload p;
    p.mode = "store";
    p.job = job;
    p.store = store_uri;
    p.dataset = "d";
    p.workers = workers;
    p.epochs = epochs;
    p.minibatch = 20;
    p.rows_per_item = 100;
    p.dim = manifest.num_features + 1;
    p.optimizer.kind = OptimizerKind::kFtrl;
    p.optimizer.learning_rate = 0.1f;
    p.round_timeout_ms = 300;
    return p;
  }
};

std::unique_ptr<ChannelStore> Channel(const Fixture& fx) { return MakeObjectChannel(fx.store); }

// Runs slot `slot` on a thread until it returns.
std::thread Slot(const ChannelPayload& p, uint32_t slot, const Fixture& fx, std::atomic<bool>* stop,
                 CrashHook crash, std::vector<WorkerResult>* results, std::mutex* mu) {
  return std::thread([=, &fx] {
    ChannelPayload q = p;
    q.slot = slot;
    ChannelWorkerOptions o;
    o.channel = Channel(fx);
    o.stop = stop;
    o.crash = crash;
    o.function_id = slot + 1;
    auto r = RunChannelWorker(q, std::move(o));
    std::lock_guard lock(*mu);
    if (r.ok()) {
      results->push_back(*r);
    } else {
      ADD_FAILURE() << r.status().ToString();
    }
  });
}

uint64_t NewestRound(ChannelStore& ch, const Layout& l) {
  uint64_t r = 0;
  for (;;) {
    bool complete = true;
    for (uint32_t c = 0; c < l.chunks() && complete; ++c) complete = *ch.Exists(l.Model(r + 1, c));
    if (!complete) return r;
    ++r;
  }
}

// Every item of every slot applied at least once (from the cursors).
bool AllItemsDone(ChannelStore& ch, const Layout& l, const ChannelPlan& plan, std::string* why) {
  for (uint32_t s = 0; s < plan.slots.size(); ++s) {
    std::string bytes;
    Cursor c;
    if (!ch.Get(l.Cursor(s), &bytes).ok() || !DecodeCursor(bytes, "c", &c).ok()) {
      *why = "slot " + std::to_string(s) + ": no cursor";
      return false;
    }
    for (size_t pos = 0; pos < c.done.size(); ++pos) {
      if (c.done[pos] == 0) {
        *why = "slot " + std::to_string(s) + " item " + std::to_string(pos) + " not done";
        return false;
      }
    }
  }
  return true;
}

TEST(ChannelSlots, FirstRoundIsTheSumOfEverySlotsGradient) {
  Fixture fx("reduce");
  ChannelPayload p = fx.Payload("reduce", 3, 1);
  p.optimizer.kind = OptimizerKind::kSgd;
  p.optimizer.learning_rate = 0.25f;
  p.keep_rounds = 1000;
  Layout layout(p.job, p.dim, p.workers);
  auto ch = Channel(fx);
  ASSERT_TRUE(WriteInitialRound(*ch, layout, p.optimizer).ok());
  std::atomic<bool> stop{false};
  std::vector<WorkerResult> results;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (uint32_t s = 0; s < 3; ++s) threads.push_back(Slot(p, s, fx, &stop, {}, &results, &mu));
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (NewestRound(*ch, layout) < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_GE(NewestRound(*ch, layout), 1u);

  // Reference: at w = 0, the sum over slots of the sum over each slot's first
  // item's minibatches of the mean-loss gradient; round 1 = -lr * that.
  const ChannelPlan plan = PlanChannel(fx.manifest.train, 1, 3, p.rows_per_item, p.seed);
  auto model = MakeModel(ModelKind::kLogisticRegression);
  std::vector<double> ref(p.dim, 0.0);
  KeyMap km;
  for (uint32_t s = 0; s < 3; ++s) {
    const ChannelItem& it = plan.slots[s][0];
    std::string bytes;
    const std::string& key = fx.manifest.train[it.partition].key;
    ASSERT_TRUE(fx.store->Get(key, &bytes).ok());
    PartitionBuffer buf;
    ASSERT_TRUE(DecodePartition(bytes, key, &buf).ok());
    const RowBlockView rows = buf.view().Slice(it.begin, it.end);
    for (size_t b = 0; b < rows.rows(); b += p.minibatch) {
      const RowBlockView mb = rows.Slice(b, std::min<size_t>(rows.rows(), b + p.minibatch));
      km.Build(mb);
      std::vector<float> w(km.num_slots(), 0.0f), g(km.num_slots(), 0.0f);
      model->Gradient(km.Batch(mb), w, g);
      for (size_t k = 0; k < km.keys().size(); ++k) {
        const uint64_t i = km.keys()[k] == kBiasKey ? p.dim - 1 : km.keys()[k];
        ref[i] += g[k];
      }
    }
  }
  std::vector<float> dense(p.dim, 0.0f);
  for (uint32_t c = 0; c < 3; ++c) {
    std::string bytes;
    ASSERT_TRUE(ch->Get(layout.Model(1, c), &bytes).ok());
    ModelChunkHeader h{1, c, layout.ChunkBegin(c), layout.ChunkSize(c), {}};
    ASSERT_TRUE(DecodeModelChunk(bytes, "m", &h, dense).ok());
    EXPECT_EQ(h.included.size(), 3u) << "chunk " << c;
  }
  double max_err = 0;
  for (uint64_t i = 0; i < p.dim; ++i) {
    max_err = std::max(max_err, std::fabs(dense[i] - (-0.25 * ref[i])));
  }
  EXPECT_LT(max_err, 1e-5);
  EXPECT_NE(dense[p.dim - 1], 0.0f);  // the bias moved
}

TEST(ChannelSlots, LostSlotDoesNotStallRounds) {
  Fixture fx("lost");
  ChannelPayload p = fx.Payload("lost", 3, 1);
  p.round_timeout_ms = 100;
  Layout layout(p.job, p.dim, p.workers);
  auto ch = Channel(fx);
  ASSERT_TRUE(WriteInitialRound(*ch, layout, p.optimizer).ok());
  std::atomic<bool> stop{false};
  std::vector<WorkerResult> results;
  std::mutex mu;
  // Slot 2 never runs: its gradients never come and nobody is its reducer.
  std::vector<std::thread> threads;
  for (uint32_t s = 0; s < 2; ++s) threads.push_back(Slot(p, s, fx, &stop, {}, &results, &mu));
  const auto t0 = Clock::now();
  while (NewestRound(*ch, layout) < 5 && Clock::now() - t0 < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GE(NewestRound(*ch, layout), 5u) << "rounds stalled without slot 2";
  // Each round waits ~1 timeout for the lost gradient and ~2 for its chunk.
  EXPECT_LT(secs, 15.0);
  // The rounds went on without slot 2's gradient.
  std::string bytes;
  ASSERT_TRUE(ch->Get(layout.Model(3, 2), &bytes).ok());
  std::vector<float> dense(p.dim);
  ModelChunkHeader h{3, 2, layout.ChunkBegin(2), layout.ChunkSize(2), {}};
  ASSERT_TRUE(DecodeModelChunk(bytes, "m", &h, dense).ok());
  for (const Inclusion& i : h.included) EXPECT_NE(i.slot, 2u);
  EXPECT_EQ(h.included.size(), 2u);
}

// A slot's function crashes at `point` in round 3; a new one resumes it, and
// every item of the job is still applied.
void CrashAndResume(const std::string& name, const std::string& point) {
  Fixture fx(name, 2000);
  ChannelPayload p = fx.Payload(name, 2, 2);
  Layout layout(p.job, p.dim, p.workers);
  auto ch = Channel(fx);
  ASSERT_TRUE(WriteInitialRound(*ch, layout, p.optimizer).ok());
  const ChannelPlan plan = PlanChannel(fx.manifest.train, p.epochs, 2, p.rows_per_item, p.seed);
  std::atomic<bool> stop{false};
  std::vector<WorkerResult> results;
  std::mutex mu;
  std::vector<std::thread> threads;
  threads.push_back(Slot(p, 0, fx, &stop, {}, &results, &mu));
  CrashHook crash = [point](std::string_view at, uint64_t round) { return at == point && round == 3; };
  std::thread first = Slot(p, 1, fx, &stop, crash, &results, &mu);
  first.join();
  {
    std::lock_guard lock(mu);
    bool crashed = false;
    for (const auto& r : results) crashed = crashed || r.end_reason == "crashed";
    ASSERT_TRUE(crashed) << "the hook did not fire";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // rounds go on without it
  threads.push_back(Slot(p, 1, fx, &stop, {}, &results, &mu));
  std::string why;
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (!AllItemsDone(*ch, layout, plan, &why) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_TRUE(AllItemsDone(*ch, layout, plan, &why)) << why;
}

TEST(ChannelSlots, ResumeAfterCrashBeforeGradients) { CrashAndResume("crash-cursor", "cursor"); }
TEST(ChannelSlots, ResumeAfterCrashAfterGradients) { CrashAndResume("crash-grads", "grads"); }
TEST(ChannelSlots, ResumeAfterCrashWhileReducing) { CrashAndResume("crash-reducing", "reducing"); }

// A slot stalls past the round deadline once: the rounds go on without its
// gradient, and the item counted done for it is one that every chunk of
// some round really summed (it was redone, not silently dropped).
TEST(ChannelSlots, LateGradientIsRedone) {
  Fixture fx("late", 1500);
  ChannelPayload p = fx.Payload("late", 2, 1);
  p.round_timeout_ms = 100;
  p.keep_rounds = 100000;  // keep every round's inclusion lists for the check
  Layout layout(p.job, p.dim, p.workers);
  auto ch = Channel(fx);
  ASSERT_TRUE(WriteInitialRound(*ch, layout, p.optimizer).ok());
  const ChannelPlan plan = PlanChannel(fx.manifest.train, p.epochs, 2, p.rows_per_item, p.seed);
  std::atomic<bool> stop{false};
  std::vector<WorkerResult> results;
  std::mutex mu;
  std::vector<std::thread> threads;
  threads.push_back(Slot(p, 0, fx, &stop, {}, &results, &mu));
  CrashHook stall = [](std::string_view at, uint64_t round) {
    if (at == "cursor" && round == 2) std::this_thread::sleep_for(std::chrono::milliseconds(600));
    return false;
  };
  threads.push_back(Slot(p, 1, fx, &stop, stall, &results, &mu));
  std::string why;
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (!AllItemsDone(*ch, layout, plan, &why) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(AllItemsDone(*ch, layout, plan, &why)) << why;
  // Rounds whose every chunk lists (slot 1, pos).
  std::vector<int> applied(plan.slots[1].size(), 0);
  std::vector<float> dense(p.dim);
  bool round3_without_slot1 = false;
  for (uint64_t r = 1;; ++r) {
    std::vector<std::vector<Inclusion>> lists;
    for (uint32_t c = 0; c < 2; ++c) {
      std::string bytes;
      if (!ch->Get(layout.Model(r, c), &bytes).ok()) break;
      ModelChunkHeader h{r, c, layout.ChunkBegin(c), layout.ChunkSize(c), {}};
      ASSERT_TRUE(DecodeModelChunk(bytes, "m", &h, dense).ok());
      lists.push_back(h.included);
    }
    if (lists.size() < 2) break;
    for (const Inclusion& i : lists[0]) {
      if (i.slot == 1 && std::find(lists[1].begin(), lists[1].end(), i) != lists[1].end()) ++applied[i.pos];
    }
    if (r == 3) {
      round3_without_slot1 = std::none_of(lists[0].begin(), lists[0].end(),
                                          [](const Inclusion& i) { return i.slot == 1; });
    }
  }
  EXPECT_TRUE(round3_without_slot1) << "the stalled gradient was not late: the test proves nothing";
  std::string bytes;
  Cursor c;
  ASSERT_TRUE(ch->Get(layout.Cursor(1), &bytes).ok());
  ASSERT_TRUE(DecodeCursor(bytes, "c", &c).ok());
  for (size_t pos = 0; pos < applied.size(); ++pos) {
    EXPECT_GE(applied[pos], 1) << "item " << pos << " counted done " << int(c.done[pos])
                               << " time(s) but never applied by every chunk";
  }
}

TEST(ChannelPayloadJson, RoundTripAndFieldErrors) {
  ChannelPayload p;
  p.mode = "redis";
  p.channel_uri = "redis://127.0.0.1:6379";
  p.job = "j";
  p.store = "mem://x";
  p.dataset = "d";
  p.slot = 1;
  p.workers = 2;
  p.epochs = 3;
  p.dim = 100;
  p.optimizer.kind = OptimizerKind::kAdagrad;
  auto q = ChannelPayloadFromJson(ChannelPayloadToJson(p));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->slot, 1u);
  EXPECT_EQ(q->optimizer.kind, OptimizerKind::kAdagrad);
  p.slot = 2;
  auto bad = ChannelPayloadFromJson(ChannelPayloadToJson(p));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'slot'"), std::string::npos);
  std::string host;
  int port = 0;
  EXPECT_TRUE(ParseRedisUri("redis://10.0.0.1:7000", &host, &port).ok());
  EXPECT_EQ(port, 7000);
  EXPECT_FALSE(ParseRedisUri("redis://nohost", &host, &port).ok());
  EXPECT_FALSE(ParseRedisUri("http://a:1", &host, &port).ok());
}

}  // namespace
}  // namespace virga::channel
