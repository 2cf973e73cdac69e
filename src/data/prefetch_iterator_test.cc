#include "virga/prefetch_iterator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "alloc_counter_test_util.h"
#include "prefetch_test_util.h"
#include "virga/partition.h"

namespace virga {
namespace {

using namespace std::chrono_literals;
using prefetch_test::DrainInOrder;
using prefetch_test::Fixture;
using prefetch_test::HookStore;
using prefetch_test::MakeFixture;

TEST(PrefetchIterator, EveryRowOnceInOrder) {
  Fixture f = MakeFixture({37, 0, 200, 1, 450, 0, 0, 199, 201, 64, 3, 1000});
  for (size_t fetches : {1, 4}) {
    for (size_t buffers : {1, 2, 3, 8}) {
      for (size_t mb : {1, 7, 64, 200, 1000, 0}) {
        SCOPED_TRACE("buffers " + std::to_string(buffers) + " minibatch " + std::to_string(mb) +
                     " fetches " + std::to_string(fetches));
        PrefetchIterator it(f.store, f.keys, {mb, buffers, 3, fetches});
        EXPECT_EQ(DrainInOrder(it, f, mb), f.total_rows);
        EXPECT_EQ(it.partitions_done(), f.keys.size());
        EXPECT_EQ(it.bytes_fetched(), f.total_bytes);
        Minibatch batch;
        EXPECT_FALSE(*it.Next(&batch));  // stays at the end
      }
    }
  }
}

TEST(PrefetchIterator, LastInPartitionAndSequence) {
  Fixture f = MakeFixture({5, 0, 4});
  PrefetchIterator it(f.store, f.keys, {2, 2, 1});
  Minibatch b;
  std::vector<std::tuple<size_t, size_t, bool>> seen;  // partition, rows, last
  while (*it.Next(&b)) seen.emplace_back(b.partition, b.rows.rows(), b.last_in_partition);
  std::vector<std::tuple<size_t, size_t, bool>> want = {
      {0, 2, false}, {0, 2, false}, {0, 1, true}, {2, 2, false}, {2, 2, true}};
  EXPECT_EQ(seen, want);
}

TEST(PrefetchIterator, EmptyKeyListAndKeySource) {
  Fixture f = MakeFixture({3, 4});
  Minibatch b;
  PrefetchIterator none(f.store, std::vector<std::string>{});
  EXPECT_FALSE(*none.Next(&b));
  int calls = 0;
  PrefetchIterator gen(f.store, [&]() -> std::optional<std::string> {
    if (calls == 2) return std::nullopt;
    return f.keys[calls++];
  });
  EXPECT_EQ(DrainInOrder(gen, f, 200), 7u);
}

TEST(PrefetchIterator, NoAllocationPerMinibatch) {
  Fixture f = MakeFixture(std::vector<size_t>(20, 1000));
  PrefetchIterator it(f.store, f.keys, {10, 3, 3});
  Minibatch b;
  ASSERT_TRUE(*it.Next(&b));
  const uint64_t before = virga_test::ThreadAllocations();
  uint64_t rows = b.rows.rows();
  while (*it.Next(&b)) rows += b.rows.rows();
  EXPECT_EQ(rows, 20000u);
  EXPECT_EQ(virga_test::ThreadAllocations(), before);  // 2000 minibatches, 20 partitions
}

TEST(PrefetchIterator, BackPressureBoundsPartitionsHeld) {
  Fixture base = MakeFixture(std::vector<size_t>(30, 50));
  std::atomic<uint64_t> gets{0};
  auto store = std::make_shared<HookStore>(base.store, [&](std::string_view) {
    gets.fetch_add(1);
    return Status::OK();
  });
  // {buffers, fetches in flight, buffers in effect}
  for (auto [buffers, fetches, held] :
       {std::tuple<size_t, size_t, size_t>{1, 1, 1}, {2, 1, 2}, {4, 1, 4}, {2, 3, 4}, {6, 3, 6}}) {
    SCOPED_TRACE(std::to_string(buffers) + " buffers, " + std::to_string(fetches) + " fetches");
    gets = 0;
    PrefetchIterator it(store, base.keys, {20, buffers, 1, fetches});
    Minibatch b;
    uint64_t max_ahead = 0;
    while (*it.Next(&b)) {
      std::this_thread::sleep_for(1ms);  // a slow consumer
      uint64_t ahead = gets.load() - it.partitions_done();
      max_ahead = std::max(max_ahead, ahead);
      ASSERT_LE(ahead, held);
    }
    EXPECT_EQ(max_ahead, held);  // and it does fill every buffer
  }
}

TEST(PrefetchIterator, KeepPreviousHoldsTheLastPartitionsViews) {
  // Row g (counted across partitions) has label g; empty partitions in between.
  const std::vector<size_t> sizes = {5, 5, 0, 5, 0, 0, 0, 5, 5, 0, 5};
  std::vector<size_t> first(sizes.size(), 0);
  for (size_t p = 1; p < sizes.size(); ++p) first[p] = first[p - 1] + sizes[p - 1];
  Fixture f = MakeFixture(sizes);
  PrefetchOptions o;
  o.minibatch_rows = 0;  // whole partitions
  o.buffers = 2;
  o.fetches_in_flight = 1;
  o.keep_previous = true;
  PrefetchIterator it(f.store, f.keys, o);
  Minibatch prev, cur;
  ASSERT_TRUE(*it.Next(&prev));
  size_t seen = 1;
  while (*it.Next(&cur)) {
    std::this_thread::sleep_for(5ms);  // the fetcher fills every buffer it may
    ASSERT_EQ(prev.rows.rows(), 5u);
    for (size_t r = 0; r < 5; ++r)  // still the previous partition's rows, not a refill
      ASSERT_EQ(prev.rows.labels[r], static_cast<float>(first[prev.partition] + r)) << prev.partition;
    EXPECT_GT(cur.partition, prev.partition);
    prev = cur;
    ++seen;
  }
  EXPECT_EQ(seen, 6u);  // the non-empty partitions
}

TEST(PrefetchIterator, ReadyTellsWhetherNextWouldWait) {
  Fixture f = MakeFixture({3, 4});
  std::atomic<bool> release{false};
  int calls = 0;
  PrefetchIterator it(f.store, [&]() -> std::optional<std::string> {
    if (calls++ == 0) return f.keys[0];
    while (!release.load()) std::this_thread::sleep_for(1ms);  // no more work yet
    return std::nullopt;
  }, {0, 2, 1, 1});
  auto wait_ready = [&] {
    for (int i = 0; i < 2000 && !it.Ready(); ++i) std::this_thread::sleep_for(1ms);
    return it.Ready();
  };
  ASSERT_TRUE(wait_ready());  // partition 0 fetched
  Minibatch b;
  ASSERT_TRUE(*it.Next(&b));
  EXPECT_EQ(b.rows.rows(), 3u);
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(it.Ready());  // the KeySource has nothing yet: Next() would wait
  release = true;
  ASSERT_TRUE(wait_ready());  // the end is known
  EXPECT_FALSE(*it.Next(&b));
}

TEST(PrefetchIterator, StopEndsPromptly) {
  Fixture base = MakeFixture(std::vector<size_t>(200, 10));
  auto slow = std::make_shared<HookStore>(base.store, [](std::string_view) {
    std::this_thread::sleep_for(5ms);
    return Status::OK();
  });
  const auto start = std::chrono::steady_clock::now();
  {
    // Stop after one minibatch while the producer is mid-stream.
    PrefetchIterator it(slow, base.keys, {4, 2, 3});
    Minibatch b;
    ASSERT_TRUE(*it.Next(&b));
    it.Stop();
    EXPECT_FALSE(*it.Next(&b));
  }
  {
    // Destroyed with the producer blocked on a full queue.
    PrefetchIterator it(base.store, base.keys, {4, 2, 3});
    std::this_thread::sleep_for(20ms);
  }
  {
    // Stop from another thread while the consumer is blocked in Next.
    auto stuck = std::make_shared<HookStore>(base.store, [](std::string_view) {
      std::this_thread::sleep_for(100ms);
      return Status::OK();
    });
    PrefetchIterator it(stuck, base.keys, {4, 2, 3});
    std::thread stopper([&] {
      std::this_thread::sleep_for(10ms);
      it.Stop();
    });
    Minibatch b;
    EXPECT_FALSE(*it.Next(&b));
    stopper.join();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);  // not 200 * 5 ms
}

TEST(PrefetchIterator, StopWhileKeySourceBlocks) {
  Fixture f = MakeFixture({3});
  std::atomic<bool> release{false};
  auto start = std::chrono::steady_clock::now();
  {
    PrefetchIterator it(f.store, [&]() -> std::optional<std::string> {
      while (!release.load()) std::this_thread::sleep_for(1ms);
      return f.keys[0];  // returns a key after Stop: it must not be waited on
    });
    std::thread releaser([&] {
      std::this_thread::sleep_for(30ms);
      release = true;
    });
    it.Stop();
    releaser.join();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(PrefetchIterator, FaultSurfacesAfterEarlierPartitions) {
  Fixture f = MakeFixture({10, 10, 10, 10, 10});
  ASSERT_TRUE(f.store->Put(f.keys[3], "VGPT garbage").ok());
  PrefetchIterator it(f.store, f.keys, {4, 3, 3});
  Minibatch b;
  uint64_t rows = 0;
  Result<bool> more = true;
  while ((more = it.Next(&b)).ok() && *more) rows += b.rows.rows();
  EXPECT_EQ(rows, 30u);  // partitions 0..2, then the fault
  ASSERT_TRUE(more.status().IsCorruption()) << more.status().ToString();
  EXPECT_NE(more.status().message().find(f.keys[3]), std::string::npos);
  EXPECT_EQ(it.partitions_done(), 3u);
  EXPECT_TRUE(it.Next(&b).status().IsCorruption());  // sticky
}

TEST(PrefetchIterator, MissingObjectIsNotRetried) {
  Fixture base = MakeFixture({10});
  std::atomic<int> gets{0};
  auto store = std::make_shared<HookStore>(base.store, [&](std::string_view) {
    ++gets;
    return Status::OK();
  });
  PrefetchIterator it(store, {base.keys[0], "ds/absent"}, {100, 2, 5});
  Minibatch b;
  ASSERT_TRUE(*it.Next(&b));
  Status s = it.Next(&b).status();
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("ds/absent"), std::string::npos);
  EXPECT_EQ(gets.load(), 2);
}

TEST(PrefetchIterator, TransientFaultsAreRetried) {
  Fixture base = MakeFixture({10, 10, 10, 10});
  std::atomic<int> failures{0}, failures2{0};
  auto flaky = std::make_shared<HookStore>(base.store, [&](std::string_view key) {
    if (key == base.keys[1] && failures.fetch_add(1) < 2) return Status::Unavailable("blip");
    if (key == base.keys[2] && failures2.fetch_add(1) < 4) return Status::IOError("disk");
    return Status::OK();
  });
  {
    PrefetchIterator it(flaky, base.keys, {7, 2, 10});
    EXPECT_EQ(DrainInOrder(it, base, 7), 40u);
    EXPECT_EQ(failures.load(), 3);
    EXPECT_EQ(failures2.load(), 5);
  }
  failures = 0;
  auto down = std::make_shared<HookStore>(base.store, [&](std::string_view key) {
    if (key == base.keys[1]) return Status::Unavailable("store is down");
    ++failures;
    return Status::OK();
  });
  PrefetchIterator it(down, base.keys, {100, 2, 3, 1});
  Minibatch b;
  ASSERT_TRUE(*it.Next(&b));
  Status s = it.Next(&b).status();
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), base.keys[1] + ": store is down (after 3 attempts)");
  EXPECT_EQ(failures.load(), 1);  // one fetch at a time: nothing after the fault is fetched
}

TEST(PrefetchIterator, DataWaitGrowsWithSlowStore) {
  Fixture base = MakeFixture({10, 10, 10, 10, 10});
  auto slow = std::make_shared<HookStore>(base.store, [](std::string_view) {
    std::this_thread::sleep_for(20ms);
    return Status::OK();
  });
  PrefetchIterator it(slow, base.keys, {100, 2, 3, 1});  // one fetch at a time
  EXPECT_EQ(it.data_wait().count(), 0);
  EXPECT_EQ(DrainInOrder(it, base, 100), 50u);
  EXPECT_GE(it.data_wait(), 60ms);  // ~5 x 20 ms of fetching the consumer waited for

  // A consumer slower than the store barely waits after the first partition.
  PrefetchIterator fast(base.store, base.keys, {100, 3, 3});
  Minibatch b;
  while (*fast.Next(&b)) std::this_thread::sleep_for(5ms);
  EXPECT_LT(fast.data_wait(), it.data_wait());
}

}  // namespace
}  // namespace virga
