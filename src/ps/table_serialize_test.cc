#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ps/table.h"

namespace virga::ps {
namespace {

// A table with some history: random init, several pushes of varying keys.
std::unique_ptr<Table> Trained(TableKind kind, OptimizerKind opt, uint32_t width, int keys) {
  TableConfig c;
  c.name = "model.v1";
  c.kind = kind;
  c.width = width;
  c.dense_rows = kind == TableKind::kDense ? static_cast<uint64_t>(keys) : 0;
  c.init = InitKind::kNormal;
  c.seed = 11;
  c.optimizer.kind = opt;
  c.optimizer.l1 = 0.01f;
  c.optimizer.clip = 2.0f;
  c.optimizer.schedule = LrSchedule::kInverseSqrt;
  c.optimizer.decay_steps = 3;
  auto t = Table::Create(c);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  for (int step = 0; step < 6; ++step) {
    std::vector<uint64_t> k;
    for (int i = step % 2; i < keys; i += 1 + step % 3) k.push_back(static_cast<uint64_t>(i));
    std::vector<float> g(k.size() * width);
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::cos(0.37f * i + step);
    EXPECT_TRUE((*t)->Push(k, g, nullptr).ok());
  }
  return std::move(t).value();
}

void ExpectSameTable(const Table& a, const Table& b) {
  EXPECT_EQ(a.version(), b.version());
  EXPECT_EQ(a.stats().rows, b.stats().rows);
  EXPECT_EQ(a.config().name, b.config().name);
  EXPECT_EQ(a.config().seed, b.config().seed);
  EXPECT_EQ(a.config().optimizer.l1, b.config().optimizer.l1);
  EXPECT_EQ(a.config().optimizer.schedule, b.config().optimizer.schedule);
  // Same rows and weights, and (via re-serialization) the same optimizer state.
  std::vector<std::pair<uint64_t, std::vector<float>>> ra, rb;
  a.ForEach([&](uint64_t k, std::span<const float> w) { ra.emplace_back(k, std::vector(w.begin(), w.end())); });
  b.ForEach([&](uint64_t k, std::span<const float> w) { rb.emplace_back(k, std::vector(w.begin(), w.end())); });
  EXPECT_EQ(ra, rb);
  std::string sa, sb;
  ASSERT_TRUE(a.Serialize(&sa).ok());
  ASSERT_TRUE(b.Serialize(&sb).ok());
  EXPECT_EQ(sa, sb);
}

TEST(TableSerialize, RoundTrip) {
  for (TableKind kind : {TableKind::kSparse, TableKind::kDense}) {
    for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kFtrl}) {
      SCOPED_TRACE(OptimizerName(opt));
      auto t = Trained(kind, opt, 3, 2000);
      std::string bytes = "prefix";  // Serialize appends
      ASSERT_TRUE(t->Serialize(&bytes).ok());
      ASSERT_EQ(bytes.substr(0, 6), "prefix");
      auto r = Table::Restore(std::string_view(bytes).substr(6), "ckpt/model");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ExpectSameTable(*t, **r);
      // Both continue identically: the optimizer state came back too.
      std::vector<uint64_t> keys = {0, 5, 1999};
      std::vector<float> g(9, 0.5f), wa(9), wb(9);
      ASSERT_TRUE(t->Push(keys, g, nullptr).ok());
      ASSERT_TRUE((*r)->Push(keys, g, nullptr).ok());
      ASSERT_TRUE(t->Pull(keys, wa, nullptr).ok());
      ASSERT_TRUE((*r)->Pull(keys, wb, nullptr).ok());
      EXPECT_EQ(wa, wb);
    }
  }
}

TEST(TableSerialize, EmptySparseTable) {
  TableConfig c;
  c.name = "empty";
  auto t = Table::Create(c);
  ASSERT_TRUE(t.ok());
  std::string bytes;
  ASSERT_TRUE((*t)->Serialize(&bytes).ok());
  auto r = Table::Restore(bytes, "mem://empty");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectSameTable(**t, **r);
}

void ExpectCorruption(std::string_view bytes, const std::string& what) {
  auto r = Table::Restore(bytes, "ckpt/damaged");
  ASSERT_FALSE(r.ok()) << what;
  EXPECT_TRUE(r.status().IsCorruption()) << what << ": " << r.status().ToString();
  EXPECT_NE(r.status().message().find("ckpt/damaged"), std::string::npos) << what;
}

TEST(TableSerialize, EveryDamagedByteIsCorruption) {
  for (TableKind kind : {TableKind::kSparse, TableKind::kDense}) {
    auto t = Trained(kind, OptimizerKind::kMomentum, 2, 5);
    std::string good;
    ASSERT_TRUE(t->Serialize(&good).ok());
    ASSERT_TRUE(Table::Restore(good, "ok").ok());
    for (size_t i = 0; i < good.size(); ++i) {
      for (uint8_t flip : {0x01, 0x80, 0xff}) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ flip);
        ExpectCorruption(bad, "byte " + std::to_string(i) + " ^ " + std::to_string(flip));
      }
    }
    for (size_t n = 0; n < good.size(); ++n) {
      ExpectCorruption(std::string_view(good).substr(0, n), "truncated to " + std::to_string(n));
    }
    ExpectCorruption(good + "x", "trailing byte");
  }
}

TEST(TableSerialize, ForeignBytesAreCorruption) {
  ExpectCorruption("", "empty");
  ExpectCorruption(std::string(100, '\0'), "zeros");
  ExpectCorruption("VGTB" + std::string(40, '\xff'), "garbage after magic");
}

}  // namespace
}  // namespace virga::ps
