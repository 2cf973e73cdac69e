#include "models/key_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

#include "data/alloc_counter_test_util.h"
#include "virga/model.h"

namespace virga {
namespace {

RowBlock RandomRows(std::mt19937& rng, size_t rows, size_t per_row, uint32_t features) {
  RowBlock b;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < per_row; ++k) b.AddFeature(static_cast<uint32_t>(rng() % features), 1.0f);
    b.EndRow(static_cast<float>(r % 2));
  }
  return b;
}

// The mapping must agree with a first-appearance numbering by unordered_map.
void CheckAgainstReference(const KeyMap& m, const RowBlockView& rows) {
  std::unordered_map<uint32_t, uint32_t> ref;
  std::vector<uint64_t> ref_keys = {kBiasKey};
  ASSERT_EQ(m.slots().size(), rows.nnz());
  for (size_t i = 0; i < rows.nnz(); ++i) {
    const uint32_t key = rows.indices[rows.offsets[0] + i];
    auto [it, fresh] = ref.emplace(key, static_cast<uint32_t>(ref_keys.size()));
    if (fresh) ref_keys.push_back(key);
    ASSERT_EQ(m.slots()[i], it->second) << "entry " << i;
  }
  ASSERT_EQ(m.num_slots(), ref_keys.size());
  EXPECT_TRUE(std::equal(m.keys().begin(), m.keys().end(), ref_keys.begin()));
  // Find: every key (the bias too) gives its slot, in any order; keys the
  // build did not see (and any beyond 32 bits) are absent.
  std::vector<uint64_t> ask(ref_keys.rbegin(), ref_keys.rend());
  std::vector<uint64_t> absent = {uint64_t{1} << 32, kBiasKey - 1};
  for (uint32_t k = 0; absent.size() < 40 && k < 100000; ++k)
    if (!ref.count(k * 7919u)) absent.push_back(k * 7919u);
  ask.insert(ask.end(), absent.begin(), absent.end());
  std::vector<uint32_t> got(ask.size(), 12345);
  m.Find(ask, got);
  for (size_t i = 0; i < ref_keys.size(); ++i)
    ASSERT_EQ(got[i], ref_keys.size() - 1 - i) << "key " << ask[i];
  for (size_t i = ref_keys.size(); i < ask.size(); ++i)
    ASSERT_EQ(got[i], KeyMap::kAbsent) << "key " << ask[i];
}

TEST(KeyMap, MatchesUnorderedMapOnRandomBatches) {
  std::mt19937 rng(3);
  KeyMap m(16);  // small, so it has to grow
  for (int round = 0; round < 60; ++round) {
    const size_t rows = 1 + rng() % 300;
    const uint32_t features = round % 3 == 0 ? 50 : (round % 3 == 1 ? 5000 : 4000000000u);
    RowBlock b = RandomRows(rng, rows + 7, 1 + rng() % 40, features);
    // A slice, as minibatches are: offsets[0] > 0.
    RowBlockView v = b.view().Slice(7, b.rows());
    m.Build(v);
    CheckAgainstReference(m, v);
    EXPECT_EQ(m.keys()[KeyMap::kBiasSlot], kBiasKey);
    const SlotBatch batch = m.Batch(v);
    EXPECT_EQ(batch.num_slots, m.num_slots());
    EXPECT_EQ(batch.bias_slot, KeyMap::kBiasSlot);
  }
}

// Minibatches of 65536 entries and more switch to 32-bit cells, and back.
TEST(KeyMap, LargeMinibatchesUseWideCells) {
  std::mt19937 rng(11);
  KeyMap m;
  for (uint32_t features : {100000u, 4000000000u, 300u}) {
    for (size_t rows : {2000u, 1700u, 10u}) {  // 78,000 / 66,300 / 390 entries
      RowBlock b = RandomRows(rng, rows, 39, features);
      m.Build(b.view());
      CheckAgainstReference(m, b.view());
    }
  }
}

// Cells are sized from the previous build's key count: a build with many more
// keys regrows mid-way (re-entering the keys so far), from 16-bit cells to
// 32-bit ones when it passes 65536 keys, and a small build after it shrinks back.
TEST(KeyMap, ABuildWithManyMoreKeysThanTheLastRegrows) {
  std::mt19937 rng(17);
  KeyMap m;
  RowBlock tiny = RandomRows(rng, 2, 3, 10);
  m.Build(tiny.view());
  CheckAgainstReference(m, tiny.view());
  RowBlock distinct;  // 120,000 distinct keys, each twice (the second time a hit)
  for (uint32_t r = 0; r < 3000; ++r) {
    for (uint32_t k = 0; k < 40; ++k) distinct.AddFeature(r * 40 + k, 1.0f);
    for (uint32_t k = 0; k < 40; ++k) distinct.AddFeature(r * 40 + k, 1.0f);
    distinct.EndRow(0.0f);
  }
  m.Build(distinct.view());
  CheckAgainstReference(m, distinct.view());
  EXPECT_EQ(m.num_slots(), 120001u);
  m.Build(tiny.view());
  CheckAgainstReference(m, tiny.view());
  RowBlock mid = RandomRows(rng, 2000, 39, 1u << 20);
  m.Build(mid.view());
  CheckAgainstReference(m, mid.view());
  // Every entry a new key, after a build of one key: the table grows to its
  // cap (2 (n + 1) cells) and ends, at sizes where 2n is a power of two too.
  for (uint32_t n : {64u, 2048u, 65536u, 65535u, 100000u}) {
    m.Build(tiny.view());
    RowBlock all;
    for (uint32_t k = 0; k < n; ++k) all.AddFeature(k * 2654435761u, 1.0f);
    all.EndRow(1.0f);
    m.Build(all.view());
    CheckAgainstReference(m, all.view());
    EXPECT_EQ(m.num_slots(), n + 1) << n;
  }
}

TEST(KeyMap, EmptyBatchHasOnlyTheBias) {
  KeyMap m;
  RowBlock b;
  b.EndRow(1.0f);  // a row with no features
  m.Build(b.view());
  EXPECT_EQ(m.num_slots(), 1u);
  EXPECT_TRUE(m.slots().empty());
  RowBlock none;
  m.Build(none.view());
  EXPECT_EQ(m.num_slots(), 1u);
  const std::vector<uint64_t> ask = {5, kBiasKey, 0};
  std::vector<uint32_t> got(3);
  m.Find(ask, got);
  EXPECT_EQ(got, (std::vector<uint32_t>{KeyMap::kAbsent, KeyMap::kBiasSlot, KeyMap::kAbsent}));
}

TEST(KeyMap, ExtremeKeysAreDistinct) {
  RowBlock b;
  for (uint32_t k : {0u, 0xFFFFFFFFu, 0u, 1u, 0xFFFFFFFFu}) b.AddFeature(k, 1.0f);
  b.EndRow(0.0f);
  KeyMap m;
  m.Build(b.view());
  ASSERT_EQ(m.num_slots(), 4u);
  EXPECT_EQ(m.keys()[1], 0u);
  EXPECT_EQ(m.keys()[2], 0xFFFFFFFFu);
  EXPECT_EQ(m.slots()[2], 1u);
  EXPECT_EQ(m.slots()[4], 2u);
}

TEST(KeyMap, NoAllocationAfterWarmUp) {
  std::mt19937 rng(5);
  std::vector<RowBlock> batches;
  for (int i = 0; i < 20; ++i) batches.push_back(RandomRows(rng, 200, 39, 1u << 20));
  KeyMap m;
  for (const RowBlock& b : batches) m.Build(b.view());  // warm-up: may grow
  const uint64_t before = virga_test::ThreadAllocations();
  for (int pass = 0; pass < 3; ++pass)
    for (const RowBlock& b : batches) m.Build(b.view());
  EXPECT_EQ(virga_test::ThreadAllocations() - before, 0u);
}

// Each call lists the bias, then every other slot of its input once, in
// order of first appearance, whatever earlier calls listed (fewer or more
// slots, the bias among the entries or not); no allocation once warm.
TEST(DistinctSlots, ListsEachSlotOnceInFirstAppearanceOrder) {
  std::mt19937 rng(6);
  DistinctSlots d;
  for (int call = 0; call < 200; ++call) {
    const uint32_t num_slots = 1 + rng() % (call % 2 ? 50 : 5000);
    const uint32_t bias = rng() % num_slots;
    std::vector<uint32_t> slots(rng() % 900);
    for (uint32_t& s : slots) s = rng() % num_slots;
    std::vector<uint32_t> want{bias};
    for (uint32_t s : slots)
      if (std::find(want.begin(), want.end(), s) == want.end()) want.push_back(s);
    const std::span<const uint32_t> got = d.Of(slots, bias, num_slots);
    ASSERT_EQ(std::vector<uint32_t>(got.begin(), got.end()), want) << "call " << call;
  }
  std::vector<uint32_t> slots(900);
  for (uint32_t& s : slots) s = rng() % 5000;
  size_t listed = d.Of(slots, 0, 5000).size();  // may grow to 5000 slots
  const uint64_t before = virga_test::ThreadAllocations();
  for (int i = 0; i < 10; ++i) listed += d.Of(slots, 0, 5000).size();
  EXPECT_GT(listed, 11u);
  EXPECT_EQ(virga_test::ThreadAllocations() - before, 0u);
}

}  // namespace
}  // namespace virga
