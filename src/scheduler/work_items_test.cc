#include "scheduler/work_items.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include "scheduler/job_internal.h"

namespace virga::sched {
namespace {

std::vector<PartitionInfo> Parts(std::vector<uint64_t> rows) {
  std::vector<PartitionInfo> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    PartitionInfo p;
    p.key = "datasets/d/train/part-" + std::to_string(i);
    p.rows = rows[i];
    out.push_back(p);
  }
  return out;
}

struct Item {
  uint32_t epoch;
  uint64_t index;
  std::string key;
  uint64_t begin, end;
};

Item ParseItem(const std::string& s) {
  std::istringstream in(s);
  Item it;
  in >> it.epoch >> it.index >> it.key >> it.begin >> it.end;
  EXPECT_TRUE(in) << s;
  return it;
}

TEST(PlanItems, EveryRowOncePerEpochAndIndicesUnique) {
  const auto parts = Parts({1000, 0, 777, 4096});
  const ItemPlan plan = PlanItems(parts, 3, 2, 300, 7);
  ASSERT_EQ(plan.payloads.size(), 3u * plan.items_per_epoch);
  std::set<uint64_t> indices;
  for (uint32_t e = 0; e < 3; ++e) {
    std::map<std::string, uint64_t> rows;
    for (uint32_t k = 0; k < plan.items_per_epoch; ++k) {
      const Item it = ParseItem(plan.payloads[e * plan.items_per_epoch + k]);
      EXPECT_EQ(it.epoch, e);
      EXPECT_LT(it.begin, it.end);
      EXPECT_LE(it.end - it.begin, 300u);
      rows[it.key] += it.end - it.begin;
      EXPECT_TRUE(indices.insert(it.index).second);
      const uint32_t slice = static_cast<uint32_t>(it.index % plan.items_per_epoch);
      EXPECT_EQ(plan.item_rows[slice], it.end - it.begin);
      EXPECT_EQ(parts[plan.item_partition[slice]].key, it.key);
    }
    EXPECT_EQ(rows.size(), 3u);  // the empty partition has no items
    EXPECT_EQ(rows[parts[0].key], 1000u);
    EXPECT_EQ(rows[parts[2].key], 777u);
    EXPECT_EQ(rows[parts[3].key], 4096u);
  }
  EXPECT_EQ(indices.size(), plan.payloads.size());
}

TEST(PlanItems, EpochsAreShuffledDifferently) {
  const ItemPlan plan = PlanItems(Parts({4096, 4096}), 2, 4, 256, 1);
  std::vector<std::string> a, b;
  for (uint32_t k = 0; k < plan.items_per_epoch; ++k) {
    a.push_back(plan.payloads[k].substr(plan.payloads[k].find(' ', 2)));
    b.push_back(plan.payloads[plan.items_per_epoch + k].substr(
        plan.payloads[plan.items_per_epoch + k].find(' ', 2)));
  }
  EXPECT_NE(a, b);
}

TEST(PlanItems, AutoSizeGivesEnoughItemsPerWorker) {
  const ItemPlan plan = PlanItems(Parts({4096, 3104}), 1, 4, 0, 1);
  EXPECT_GE(plan.items_per_epoch, 4u * 8 / 2);  // 7200 rows, >= 256 rows each: 29 items
  EXPECT_GE(plan.rows_per_item, 256u);
  const ItemPlan big = PlanItems(Parts(std::vector<uint64_t>(40, 1000)), 1, 1, 0, 1);
  EXPECT_EQ(big.rows_per_item, 1000u);  // 40000 / 8 rows, but never more than a partition
  EXPECT_EQ(big.items_per_epoch, 40u);
}

TEST(MergeTimes, WeightsMeansAndMergesHistograms) {
  IterationTimes a, b, m;
  a.iterations = 1;
  a.pull_us = 10;
  a.histogram.assign(200, 0);
  a.histogram[100] = 1;
  b.iterations = 3;
  b.pull_us = 30;
  b.histogram.assign(120, 0);
  b.histogram[110] = 3;
  MergeTimes(a, &m);
  MergeTimes(b, &m);
  EXPECT_EQ(m.iterations, 4u);
  EXPECT_DOUBLE_EQ(m.pull_us, 25.0);
  EXPECT_EQ(m.histogram.size(), 200u);
  EXPECT_EQ(m.histogram[100], 1u);
  EXPECT_EQ(m.histogram[110], 3u);
  // p50 falls in bucket 110: [2^(110/8), 2^(111/8)) ns.
  EXPECT_GE(m.p50_us * 1000, std::exp2(110 / 8.0));
  EXPECT_LT(m.p50_us * 1000, std::exp2(111 / 8.0));
}

TEST(JobId, GeneratedIdsAreValidAndBadOnesRefused) {
  EXPECT_TRUE(ValidateJobId(NewJobId()).ok());
  EXPECT_FALSE(ValidateJobId("a/b").ok());
  EXPECT_FALSE(ValidateJobId("").ok());
  EXPECT_NE(NewJobId(), NewJobId());
}

TEST(JobUtilTest, EmbeddedServerThreadsLeaveCpusToWorkersButServeEachOne) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  ASSERT_GT(cpus, 0);
  EXPECT_EQ(EmbeddedServerThreads(0), std::clamp<long>(cpus, 1, 8));  // workers elsewhere
  for (uint32_t local = 1; local <= 20; ++local) {
    const int t = EmbeddedServerThreads(local);
    EXPECT_GE(t, 1) << local;
    EXPECT_LE(t, 8) << local;
    // A thread per local worker, as far as the CPUs go ...
    EXPECT_GE(t, std::min<long>({local, cpus, 8})) << local;
    // ... and beyond that no more than the CPUs the workers leave.
    EXPECT_LE(t, std::max<long>({cpus - static_cast<long>(local), std::min<long>(local, cpus), 1}))
        << local;
  }
}

TEST(JobUtilTest, AutoSettingsGiveSmallDataSetsMoreEpochs) {
  auto epochs_for = [](uint64_t rows, uint32_t asked) {
    Manifest m;
    m.train_rows = rows;
    TrainOptions o;
    o.epochs = asked;
    ResolveAutoSettings(m, &o);
    return o.epochs;
  };
  EXPECT_EQ(epochs_for(2'000'000, 0), kDefaultEpochs);
  EXPECT_EQ(epochs_for(kAutoEpochSamples / kDefaultEpochs, 0), kDefaultEpochs);
  EXPECT_EQ(epochs_for(300, 0), 100u);                     // 30,000 samples
  EXPECT_EQ(epochs_for(1000, 0), 30u);
  EXPECT_EQ(epochs_for(1001, 0), 30u);                     // rounded up: 30,030 samples
  EXPECT_EQ(epochs_for(10, 0), kAutoEpochsMax);            // capped
  EXPECT_EQ(epochs_for(0, 0), kAutoEpochsMax);             // no division by zero
  EXPECT_EQ(epochs_for(300, 2), 2u);                       // asked for: kept
  TrainOptions o;
  ResolveAutoSettings(Manifest{}, &o);
  EXPECT_EQ(o.minibatch, kDefaultMinibatch);
}

}  // namespace
}  // namespace virga::sched
