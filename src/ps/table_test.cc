#include "ps/table.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <map>
#include <thread>
#include <vector>

#include "ps/table_internal.h"

namespace virga::ps {
namespace {

TableConfig Sparse(OptimizerKind kind, uint32_t width = 1) {
  TableConfig c;
  c.name = "t";
  c.width = width;
  c.optimizer.kind = kind;
  return c;
}

TableConfig Dense(OptimizerKind kind, uint64_t rows, uint32_t width = 1) {
  TableConfig c = Sparse(kind, width);
  c.kind = TableKind::kDense;
  c.dense_rows = rows;
  return c;
}

std::unique_ptr<Table> Make(const TableConfig& c) {
  auto t = Table::Create(c);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

std::vector<float> PullAll(Table& t, const std::vector<uint64_t>& keys) {
  std::vector<float> out(keys.size() * t.config().width);
  EXPECT_TRUE(t.Pull(keys, out, nullptr).ok());
  return out;
}

TEST(Table, AbsentKeysPullInitWithoutGrowing) {
  for (InitKind init : {InitKind::kZeros, InitKind::kUniform, InitKind::kNormal}) {
    TableConfig c = Sparse(OptimizerKind::kAdagrad, 4);
    c.init = init;
    c.init_scale = 0.5f;
    c.seed = 7;
    auto t = Make(c);
    const std::vector<uint64_t> keys = {1, 2, 1ull << 40, ~0ull};
    const std::vector<float> a = PullAll(*t, keys), b = PullAll(*t, keys);
    EXPECT_EQ(a, b);  // deterministic
    EXPECT_EQ(t->stats().rows, 0u);
    EXPECT_EQ(t->version(), 0u);
    for (float v : a) {
      if (init == InitKind::kZeros) {
        EXPECT_EQ(v, 0.0f);
      } else if (init == InitKind::kUniform) {
        EXPECT_TRUE(v >= -0.5f && v < 0.5f) << v;
      }
    }
    if (init != InitKind::kZeros) {
      EXPECT_NE(a[0], a[1]);  // columns differ
      EXPECT_NE(a[0], a[4]);  // keys differ
      c.seed = 8;
      EXPECT_NE(PullAll(*Make(c), keys), a);  // seeds differ
      // A dense table starts from the same init as a sparse one.
      TableConfig d = c;
      d.seed = 7;
      d.kind = TableKind::kDense;
      d.dense_rows = 3;
      EXPECT_EQ(PullAll(*Make(d), {2}), std::vector<float>(a.begin() + 4, a.begin() + 8));
    }
  }
}

TEST(Table, NormalInitHasTheRequestedScale) {
  TableConfig c = Sparse(OptimizerKind::kSgd, 1);
  c.init = InitKind::kNormal;
  c.init_scale = 2.0f;
  auto t = Make(c);
  std::vector<uint64_t> keys(20000);
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = i;
  double sum = 0, sum2 = 0;
  for (float v : PullAll(*t, keys)) sum += v, sum2 += double{v} * v;
  const double mean = sum / keys.size(), var = sum2 / keys.size() - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.1);
}

// Push then pull equals ApplyGradient on a local copy (the optimizer itself
// is checked against reference math in optimizer_test.cc).
void CheckPushMatchesOptimizer(const TableConfig& c) {
  auto t = Make(c);
  const uint32_t w = c.width;
  const int sw = OptimizerStateWidth(c.optimizer.kind);
  const std::vector<uint64_t> keys = {3, 9, 0, 12};
  std::vector<float> weights = PullAll(*t, keys), state(keys.size() * w * sw);
  InitOptimizerState(c.optimizer, state);
  for (int step = 0; step < 5; ++step) {
    std::vector<float> g(keys.size() * w);
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(1.3f * step + 0.7f * i);
    ASSERT_TRUE(t->Push(keys, g, nullptr).ok());
    const float lr = ScheduledLearningRate(c.optimizer, step);
    ApplyGradient(c.optimizer, lr, weights, state, g);
    EXPECT_EQ(PullAll(*t, keys), weights) << "step " << step;
  }
}

TEST(Table, PushThenPullEqualsOptimizerMath) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kMomentum,
                             OptimizerKind::kNesterov, OptimizerKind::kAdagrad,
                             OptimizerKind::kAdam, OptimizerKind::kFtrl}) {
    SCOPED_TRACE(OptimizerName(kind));
    for (uint32_t width : {1u, 3u}) {
      TableConfig c = Sparse(kind, width);
      c.init = InitKind::kUniform;
      c.optimizer.l2 = 0.01f;
      c.optimizer.schedule = LrSchedule::kExponential;
      c.optimizer.decay_steps = 2;
      CheckPushMatchesOptimizer(c);
      TableConfig d = c;
      d.kind = TableKind::kDense;
      d.dense_rows = 13;
      CheckPushMatchesOptimizer(d);
    }
  }
}

TEST(Table, DuplicateKeysApplyInOrder) {
  for (TableKind kind : {TableKind::kSparse, TableKind::kDense}) {
    TableConfig c = kind == TableKind::kSparse ? Sparse(OptimizerKind::kAdagrad, 2)
                                               : Dense(OptimizerKind::kAdagrad, 10, 2);
    auto t = Make(c);
    const std::vector<uint64_t> keys = {5, 1, 5, 5};
    const std::vector<float> g = {1, 2, 3, 4, 5, 6, 7, 8};
    ASSERT_TRUE(t->Push(keys, g, nullptr).ok());
    std::vector<float> w(2, 0.0f), s(2, 0.0f);
    for (int i : {0, 2, 3}) {
      ApplyGradient(c.optimizer, c.optimizer.learning_rate, w, s, {&g[2 * i], 2});
    }
    EXPECT_EQ(PullAll(*t, {5}), w);
    EXPECT_EQ(t->stats().keys_pushed, 4u);
  }
}

// One push of many new keys (with repeats) grows shards in the middle of
// the call: every row must still get each of its gradients. SGD with
// learning rate 1/8 and gradients that are multiples of 1/8 keep the sums exact.
TEST(Table, PushesThatGrowTheTableKeepEveryUpdate) {
  TableConfig c = Sparse(OptimizerKind::kSgd);
  c.optimizer.learning_rate = 0.125f;
  auto t = Make(c);
  std::map<uint64_t, float> want;
  uint64_t next_key = 1;
  for (size_t batch : {1u, 7u, 100u, 3000u, 20000u}) {
    std::vector<uint64_t> keys;
    std::vector<float> g;
    for (size_t i = 0; i < batch; ++i) {
      // Every fourth entry repeats an earlier key of this batch.
      const uint64_t k = (i % 4 == 3) ? keys[i / 2] : (next_key++ * 0x9E3779B97F4A7C15ull);
      keys.push_back(k);
      g.push_back(static_cast<float>(i % 5) * 0.125f);
      want[k] -= 0.125f * g.back();
    }
    ASSERT_TRUE(t->Push(keys, g, nullptr).ok());
  }
  EXPECT_EQ(t->stats().rows, want.size());
  std::vector<uint64_t> keys;
  std::vector<float> expect;
  for (const auto& [k, w] : want) {
    keys.push_back(k);
    expect.push_back(w);
  }
  EXPECT_EQ(PullAll(*t, keys), expect);
  size_t seen = 0;
  t->ForEach([&](uint64_t k, std::span<const float> w) {
    ++seen;
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], want.at(k)) << k;
  });
  EXPECT_EQ(seen, want.size());
}

TEST(Table, DenseBoundsAndSizesAreChecked) {
  auto t = Make(Dense(OptimizerKind::kSgd, 100));
  std::vector<float> buf(2);
  Status s = t->Pull(std::vector<uint64_t>{3, 100}, buf, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kOutOfRange);
  EXPECT_NE(s.message().find("key 100"), std::string::npos) << s.ToString();
  s = t->Push(std::vector<uint64_t>{99, 1000}, std::vector<float>{1, 1}, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kOutOfRange);
  EXPECT_EQ(PullAll(*t, {99}), std::vector<float>{0.0f});  // the error left row 99 alone
  EXPECT_EQ(t->version(), 0u);
  auto sparse = Make(Sparse(OptimizerKind::kSgd, 2));
  std::vector<float> three(3);
  EXPECT_TRUE(sparse->Pull(std::vector<uint64_t>{1}, three, nullptr).IsInvalidArgument());
  EXPECT_TRUE(sparse->Push(std::vector<uint64_t>{1, 2}, std::vector<float>(2), nullptr)
                  .IsInvalidArgument());
  EXPECT_EQ(sparse->stats().pushes, 0u);
}

TEST(Table, VersionCountsPushesAndDrivesTheSchedule) {
  TableConfig c = Sparse(OptimizerKind::kSgd);
  c.optimizer.learning_rate = 1.0f;
  c.optimizer.schedule = LrSchedule::kStep;
  c.optimizer.decay_steps = 1;
  c.optimizer.decay_rate = 0.5f;
  auto t = Make(c);
  uint64_t v = 99;
  for (uint64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(t->Push(std::vector<uint64_t>{42}, std::vector<float>{1.0f}, &v).ok());
    EXPECT_EQ(v, i);
  }
  std::vector<float> out(1);
  ASSERT_TRUE(t->Pull(std::vector<uint64_t>{42}, out, &v).ok());
  EXPECT_EQ(v, 3u);
  EXPECT_EQ(out[0], -(1.0f + 0.5f + 0.25f));  // lr at versions 0, 1, 2
}

TEST(Table, StatsAndForEach) {
  auto t = Make(Sparse(OptimizerKind::kAdam, 2));
  std::map<uint64_t, std::vector<float>> expect;
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 5000; ++k) keys.push_back(k * 7919);  // grows every shard's map
  ASSERT_TRUE(t->Push(keys, std::vector<float>(keys.size() * 2, 1.0f), nullptr).ok());
  ASSERT_TRUE(t->Push({keys.data(), 10}, std::vector<float>(20, -1.0f), nullptr).ok());
  const std::vector<float> pulled = PullAll(*t, keys);
  for (size_t i = 0; i < keys.size(); ++i) expect[keys[i]] = {pulled[2 * i], pulled[2 * i + 1]};
  PullAll(*t, {1, 2, 3});
  TableStats st = t->stats();
  EXPECT_EQ(st.rows, 5000u);
  EXPECT_EQ(st.bytes, 5000u * 2 * (1 + 3) * sizeof(float));
  EXPECT_EQ(st.version, 2u);
  EXPECT_EQ(st.pushes, 2u);
  EXPECT_EQ(st.pulls, 2u);
  EXPECT_EQ(st.keys_pushed, 5010u);
  EXPECT_EQ(st.keys_pulled, 5003u);
  std::map<uint64_t, std::vector<float>> seen;
  t->ForEach([&](uint64_t k, std::span<const float> w) {
    EXPECT_TRUE(seen.emplace(k, std::vector<float>(w.begin(), w.end())).second);
  });
  EXPECT_EQ(seen, expect);

  auto d = Make(Dense(OptimizerKind::kFtrl, 5000, 3));
  EXPECT_EQ(d->stats().rows, 5000u);
  EXPECT_EQ(d->stats().bytes, 5000u * 3 * 3 * sizeof(float));
  uint64_t next = 0;
  d->ForEach([&](uint64_t k, std::span<const float> w) {
    EXPECT_EQ(k, next++);
    EXPECT_EQ(w.size(), 3u);
  });
  EXPECT_EQ(next, 5000u);
}

// SGD with lr and gradients exact in binary: every order of the sums gives
// the same float, so concurrent pushes must add up to exactly -lr * sum(g).
TEST(Table, ConcurrentPushesSumExactly) {
  for (TableKind kind : {TableKind::kSparse, TableKind::kDense}) {
    TableConfig c = kind == TableKind::kSparse ? Sparse(OptimizerKind::kSgd, 2)
                                               : Dense(OptimizerKind::kSgd, 3000, 2);
    c.optimizer.learning_rate = 0.5f;
    auto t = Make(c);
    constexpr int kThreads = 4, kPushes = 200, kKeys = 300;
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        std::vector<uint64_t> keys(kKeys);
        std::vector<float> g(kKeys * 2);
        for (int p = 0; p < kPushes; ++p) {
          for (int i = 0; i < kKeys; ++i) {
            keys[i] = static_cast<uint64_t>((i * 7 + p + th * 100) % 1000);  // overlapping
            g[2 * i] = 1.0f;
            g[2 * i + 1] = static_cast<float>(th + 1) * 0.25f;
          }
          ASSERT_TRUE(t->Push(keys, g, nullptr).ok());
          if (p % 50 == 0) PullAll(*t, keys);
        }
      });
    }
    for (auto& th : threads) th.join();
    std::vector<double> sum(1000 * 2, 0.0);
    for (int th = 0; th < kThreads; ++th) {
      for (int p = 0; p < kPushes; ++p) {
        for (int i = 0; i < kKeys; ++i) {
          const int k = (i * 7 + p + th * 100) % 1000;
          sum[2 * k] += 1.0;
          sum[2 * k + 1] += (th + 1) * 0.25;
        }
      }
    }
    std::vector<uint64_t> all(1000);
    for (uint64_t k = 0; k < 1000; ++k) all[k] = k;
    const std::vector<float> w = PullAll(*t, all);
    for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(w[i], static_cast<float>(-0.5 * sum[i])) << i;
    EXPECT_EQ(t->version(), uint64_t{kThreads * kPushes});
    EXPECT_EQ(t->stats().pushes, uint64_t{kThreads * kPushes});
  }
}

// The counting sort that groups a call's keys by lock: stable, complete,
// for every size around its four-stream chunking.
TEST(Table, GroupByShardIsAStableSort) {
  internal::ShardGroups g;
  for (size_t n : {0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 4099}) {
    for (bool one_shard : {false, true}) {
      std::vector<uint64_t> keys(n);
      for (size_t i = 0; i < n; ++i) keys[i] = one_shard ? i % 7 : (i * 2654435761u) % 977;
      auto shard_of = [](uint64_t t) { return static_cast<uint32_t>(t >> 58); };
      auto tag_of = [](uint64_t k) { return internal::ShardHash(k); };
      internal::GroupByShard(keys, tag_of, shard_of, &g);
      std::vector<uint32_t> expect(n);
      for (uint32_t i = 0; i < n; ++i) expect[i] = i;
      std::stable_sort(expect.begin(), expect.end(), [&](uint32_t a, uint32_t b) {
        return shard_of(tag_of(keys[a])) < shard_of(tag_of(keys[b]));
      });
      ASSERT_EQ(std::vector<uint32_t>(g.order.begin(), g.order.begin() + n), expect) << n;
      ASSERT_EQ(g.begin[0], 0u);
      ASSERT_EQ(g.begin[internal::kShards], n);
      for (uint32_t s = 0; s < internal::kShards; ++s) {
        for (uint32_t j = g.begin[s]; j < g.begin[s + 1]; ++j) {
          ASSERT_EQ(shard_of(g.tag[g.order[j]]), s);
        }
      }
    }
  }
}

TEST(Table, EmptyCallsAreFine) {
  for (TableKind kind : {TableKind::kSparse, TableKind::kDense}) {
    auto t = Make(kind == TableKind::kSparse ? Sparse(OptimizerKind::kFtrl)
                                             : Dense(OptimizerKind::kFtrl, 4));
    uint64_t v = 7;
    EXPECT_TRUE(t->Pull({}, {}, &v).ok());
    EXPECT_EQ(v, 0u);
    EXPECT_TRUE(t->Push({}, {}, &v).ok());
    EXPECT_EQ(v, 1u);
  }
}

TEST(Table, ConfigValidationNamesTheField) {
  auto expect_bad = [](TableConfig c, const std::string& field) {
    auto t = Table::Create(c);
    ASSERT_FALSE(t.ok()) << field;
    EXPECT_TRUE(t.status().IsInvalidArgument());
    EXPECT_NE(t.status().message().find(field), std::string::npos) << t.status().ToString();
  };
  TableConfig c = Sparse(OptimizerKind::kSgd);
  c.name = "";
  expect_bad(c, "name");
  c.name = "bad name";
  expect_bad(c, "name");
  c = Sparse(OptimizerKind::kSgd, 0);
  expect_bad(c, "width");
  c = Sparse(OptimizerKind::kSgd, 1025);
  expect_bad(c, "width");
  c = Sparse(OptimizerKind::kSgd);
  c.dense_rows = 5;
  expect_bad(c, "dense_rows");
  expect_bad(Dense(OptimizerKind::kSgd, 0), "dense_rows");
  expect_bad(Dense(OptimizerKind::kAdam, uint64_t{1} << 40), "dense_rows");
  c = Sparse(OptimizerKind::kSgd);
  c.init_scale = -1;
  expect_bad(c, "init_scale");
  c = Sparse(OptimizerKind::kSgd);
  c.optimizer.beta2 = 1;
  expect_bad(c, "table 't': optimizer.beta2");
}

}  // namespace
}  // namespace virga::ps
