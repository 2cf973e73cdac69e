// Local steps: a worker's replica trained on minibatches and merged back
// with PUSH_DELTA must leave the table where the same minibatches pushed one
// by one would have, for every optimizer; state pulls of absent keys are
// their initial rows; deltas of several workers add up.
#include "ps/replica.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "ps/table.h"

namespace virga::ps {
namespace {

TableConfig Config(OptimizerKind kind, uint32_t width, InitKind init) {
  TableConfig c;
  c.name = "t";
  c.width = width;
  c.init = init;
  c.init_scale = init == InitKind::kZeros ? 0.0f : 0.1f;
  c.seed = 7;
  c.optimizer.kind = kind;
  c.optimizer.learning_rate = kind == OptimizerKind::kSgd ? 0.05f : 0.1f;
  c.optimizer.l1 = kind == OptimizerKind::kFtrl ? 0.01f : 0.0f;
  return c;
}

// Minibatches over a few keys (some repeated across minibatches, some not).
struct Step {
  std::vector<uint64_t> keys;  // distinct within a step
  std::vector<float> grads;    // keys * width
};

std::vector<Step> Steps(uint32_t width, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> key(0, 11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<Step> out;
  for (int s = 0; s < n; ++s) {
    Step st;
    for (int i = 0; i < 5; ++i) {
      const uint64_t k = key(rng);
      if (std::find(st.keys.begin(), st.keys.end(), k) == st.keys.end()) st.keys.push_back(k);
    }
    for (size_t i = 0; i < st.keys.size() * width; ++i) st.grads.push_back(g(rng));
    out.push_back(std::move(st));
  }
  return out;
}

std::vector<float> PullAll(Table& t, std::span<const uint64_t> keys) {
  std::vector<float> w(keys.size() * t.config().width);
  EXPECT_TRUE(t.Pull(keys, w, nullptr).ok());
  return w;
}

// The round's distinct keys, and the slot of each key.
std::vector<uint64_t> RoundKeys(const std::vector<Step>& steps) {
  std::vector<uint64_t> keys;
  for (const Step& s : steps)
    for (uint64_t k : s.keys)
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  return keys;
}

uint32_t SlotOf(const std::vector<uint64_t>& keys, uint64_t k) {
  return static_cast<uint32_t>(std::find(keys.begin(), keys.end(), k) - keys.begin());
}

// Trains `steps` on a replica pulled from t and pushes the delta back.
void TrainLocally(Table& t, const std::vector<Step>& steps, Replica* r) {
  const TableConfig& c = t.config();
  const std::vector<uint64_t> keys = RoundKeys(steps);
  r->Reset(c.optimizer, c.width, c.init, static_cast<uint32_t>(keys.size()));
  uint64_t version = 0;
  ASSERT_TRUE(t.PullState(keys, r->rows(), &version).ok());
  r->Load(ScheduledLearningRate(c.optimizer, version));
  std::vector<float> grads(keys.size() * c.width, 0.0f);
  uint64_t step = 0;
  for (const Step& s : steps) {
    std::vector<uint32_t> touched;
    for (size_t i = 0; i < s.keys.size(); ++i) {
      const uint32_t slot = SlotOf(keys, s.keys[i]);
      touched.push_back(slot);
      for (uint32_t j = 0; j < c.width; ++j) grads[slot * c.width + j] = s.grads[i * c.width + j];
    }
    r->Step(touched, grads, ScheduledLearningRate(c.optimizer, version + step++));
  }
  for (float g : grads) ASSERT_EQ(g, 0.0f) << "Step zeroes the gradients it applied";
  ASSERT_TRUE(t.PushDelta(keys, r->Delta(), static_cast<uint32_t>(steps.size()), &version).ok());
}

struct Case {
  OptimizerKind kind;
  uint32_t width;
  InitKind init;
};

class ReplicaTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReplicaTest, OneWorkersRoundEqualsItsPushesOneByOne) {
  const Case k = GetParam();
  const TableConfig c = Config(k.kind, k.width, k.init);
  auto seq = Table::Create(c);
  auto loc = Table::Create(c);
  ASSERT_TRUE(seq.ok() && loc.ok());
  Replica r;
  for (int round = 0; round < 3; ++round) {
    const std::vector<Step> steps = Steps(c.width, 8, 100 + round);
    for (const Step& s : steps) ASSERT_TRUE((*seq)->Push(s.keys, s.grads, nullptr).ok());
    TrainLocally(**loc, steps, &r);
  }
  EXPECT_EQ((*loc)->version(), (*seq)->version()) << "a delta counts its steps";
  std::vector<uint64_t> all(12);
  for (uint64_t i = 0; i < 12; ++i) all[i] = i;
  const std::vector<float> a = PullAll(**seq, all), b = PullAll(**loc, all);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(b[i], a[i], 1e-5f * (1.0f + std::fabs(a[i]))) << "coordinate " << i;
  // And their whole state: a later round starts from the same place.
  std::vector<float> sa(all.size() * ReplicaRowFloats(c)), sb(sa.size());
  ASSERT_TRUE((*seq)->PullState(all, sa, nullptr).ok());
  ASSERT_TRUE((*loc)->PullState(all, sb, nullptr).ok());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_NEAR(sb[i], sa[i], 1e-5f * (1.0f + std::fabs(sa[i]))) << "state float " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, ReplicaTest,
    ::testing::Values(Case{OptimizerKind::kSgd, 1, InitKind::kZeros},
                      Case{OptimizerKind::kAdagrad, 1, InitKind::kZeros},
                      Case{OptimizerKind::kFtrl, 1, InitKind::kZeros},
                      Case{OptimizerKind::kFtrl, 3, InitKind::kNormal},
                      Case{OptimizerKind::kAdam, 2, InitKind::kUniform},
                      Case{OptimizerKind::kMomentum, 1, InitKind::kZeros},
                      Case{OptimizerKind::kNesterov, 2, InitKind::kNormal}));

TEST(ReplicaRows, FtrlOverZerosCarriesTheStateOnly) {
  const TableConfig zeros = Config(OptimizerKind::kFtrl, 1, InitKind::kZeros);
  EXPECT_EQ(ReplicaRowFloats(zeros), 2u) << "z and n: the weight is their closed form";
  EXPECT_EQ(ReplicaRowFloats(Config(OptimizerKind::kFtrl, 4, InitKind::kNormal)), 12u)
      << "random initial weights are not a function of the state";
  EXPECT_EQ(ReplicaRowFloats(Config(OptimizerKind::kAdagrad, 1, InitKind::kZeros)), 2u);
  EXPECT_EQ(ReplicaRowFloats(Config(OptimizerKind::kSgd, 3, InitKind::kZeros)), 3u);
}

TEST(ReplicaRows, AbsentKeysPullTheirInitialRowWithoutInsertingThem) {
  const TableConfig c = Config(OptimizerKind::kFtrl, 3, InitKind::kNormal);
  auto t = Table::Create(c);
  ASSERT_TRUE(t.ok());
  const std::vector<uint64_t> keys = {5, 9};
  std::vector<float> w = PullAll(**t, keys);
  std::vector<float> s(keys.size() * ReplicaRowFloats(c));
  ASSERT_TRUE((*t)->PullState(keys, s, nullptr).ok());
  for (size_t k = 0; k < keys.size(); ++k)
    for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(s[k * 9 + i], w[k * 3 + i]) << "initial weight";
  EXPECT_EQ((*t)->stats().rows, 0u);
  // A replica of them trains from those weights (a factorization model's
  // random factors are not lost to FTRL's closed form of a zero state).
  Replica r;
  r.Reset(c.optimizer, c.width, c.init, 2);
  std::copy(s.begin(), s.end(), r.rows().begin());
  r.Load(c.optimizer.learning_rate);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(r.weights()[i], w[i]);
}

TEST(ReplicaRows, DeltasOfTwoWorkersAddUp) {
  const TableConfig c = Config(OptimizerKind::kAdagrad, 1, InitKind::kZeros);
  auto t = Table::Create(c);
  ASSERT_TRUE(t.ok());
  const std::vector<uint64_t> keys = {1, 2};
  // Two replicas pulled at version 0 (before either pushes).
  Replica a, b;
  for (Replica* r : {&a, &b}) {
    r->Reset(c.optimizer, c.width, c.init, 2);
    ASSERT_TRUE((*t)->PullState(keys, r->rows(), nullptr).ok());
    r->Load(0.1f);
  }
  std::vector<float> g = {1.0f, -2.0f};
  const std::vector<uint32_t> both = {0, 1};
  a.Step(both, g, 0.1f);
  g = {0.5f, 0.0f};
  b.Step(both, g, 0.1f);
  std::vector<float> da(a.Delta().begin(), a.Delta().end());
  std::vector<float> db(b.Delta().begin(), b.Delta().end());
  ASSERT_TRUE((*t)->PushDelta(keys, da, 1, nullptr).ok());
  uint64_t version = 0;
  ASSERT_TRUE((*t)->PushDelta(keys, db, 1, &version).ok());
  EXPECT_EQ(version, 2u);
  std::vector<float> s(4);
  ASSERT_TRUE((*t)->PullState(keys, s, nullptr).ok());
  for (size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(s[i], da[i] + db[i]);
}

TEST(ReplicaRows, AddDeltaOfGivesALaterPullTheUpdateItMissed) {
  // A pull sent before the previous round's push: patched with that round's
  // delta it equals a pull sent after it.
  const TableConfig c = Config(OptimizerKind::kFtrl, 1, InitKind::kZeros);
  auto t = Table::Create(c);
  ASSERT_TRUE(t.ok());
  const std::vector<Step> first = Steps(1, 6, 1);
  const std::vector<uint64_t> k1 = RoundKeys(first);
  const std::vector<uint64_t> k2 = {11, 3, 4, 100};
  Replica r1, early, late;
  early.Reset(c.optimizer, 1, c.init, 4);
  ASSERT_TRUE((*t)->PullState(k2, early.rows(), nullptr).ok());  // before r1's push
  TrainLocally(**t, first, &r1);
  std::vector<uint32_t> prev_slot;  // k2's keys' slots in k1 (the worker asks a KeyMap)
  for (uint64_t k : k2) {
    const auto at = std::find(k1.begin(), k1.end(), k);
    prev_slot.push_back(at == k1.end() ? Replica::kNoSlot : static_cast<uint32_t>(at - k1.begin()));
  }
  ASSERT_NE(std::count(prev_slot.begin(), prev_slot.end(), Replica::kNoSlot), 0);
  ASSERT_NE(std::count(prev_slot.begin(), prev_slot.end(), Replica::kNoSlot), 4);
  early.AddDeltaOf(r1, prev_slot);
  late.Reset(c.optimizer, 1, c.init, 4);
  ASSERT_TRUE((*t)->PullState(k2, late.rows(), nullptr).ok());
  early.Load(0.1f);
  late.Load(0.1f);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(early.weights()[i], late.weights()[i], 1e-6f);
}

TEST(ReplicaRows, BadSizesAndZeroStepsAreRefusedBeforeAnyChange) {
  const TableConfig c = Config(OptimizerKind::kFtrl, 1, InitKind::kZeros);
  auto t = Table::Create(c);
  ASSERT_TRUE(t.ok());
  const std::vector<uint64_t> keys = {1};
  std::vector<float> one(1), two(2);
  EXPECT_TRUE((*t)->PullState(keys, one, nullptr).IsInvalidArgument());
  EXPECT_TRUE((*t)->PushDelta(keys, one, 1, nullptr).IsInvalidArgument());
  EXPECT_TRUE((*t)->PushDelta(keys, two, 0, nullptr).IsInvalidArgument());
  EXPECT_EQ((*t)->stats().rows, 0u);
  EXPECT_EQ((*t)->version(), 0u);
  TableConfig d = c;
  d.kind = TableKind::kDense;
  d.dense_rows = 4;
  auto dense = Table::Create(d);
  ASSERT_TRUE(dense.ok());
  const std::vector<uint64_t> far = {4};
  EXPECT_EQ((*dense)->PullState(far, two, nullptr).code(), Status::Code::kOutOfRange);
  const std::vector<uint64_t> near = {3};
  two = {1.0f, 4.0f};
  ASSERT_TRUE((*dense)->PushDelta(near, two, 3, nullptr).ok());
  EXPECT_EQ((*dense)->version(), 3u);
  std::vector<float> w(1);
  ASSERT_TRUE((*dense)->Pull(near, w, nullptr).ok());
  EXPECT_NE(w[0], 0.0f) << "FTRL's weight settled from the added (z, n)";
}

}  // namespace
}  // namespace virga::ps
