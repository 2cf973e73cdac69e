#include "virga/prefetch_iterator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "alloc_counter_test_util.h"
#include "virga/partition.h"

namespace virga {
namespace {

using namespace std::chrono_literals;

// Forwards to a real store; runs `on_get` before each Get (to count, delay or
// fail it).
class HookStore final : public ObjectStore {
 public:
  using Hook = std::function<Status(std::string_view key)>;
  HookStore(std::shared_ptr<ObjectStore> inner, Hook on_get)
      : inner_(std::move(inner)), on_get_(std::move(on_get)) {}

  std::string uri() const override { return inner_->uri(); }
  Status Put(std::string_view k, std::string_view d) override { return inner_->Put(k, d); }
  Status Get(std::string_view k, std::string* out) override {
    VIRGA_RETURN_IF_ERROR(on_get_(k));
    return inner_->Get(k, out);
  }
  Status GetRange(std::string_view k, uint64_t o, uint64_t n, std::string* out) override {
    return inner_->GetRange(k, o, n, out);
  }
  Result<std::vector<ObjectInfo>> List(std::string_view p) override { return inner_->List(p); }
  Status Delete(std::string_view k) override { return inner_->Delete(k); }
  Result<bool> Exists(std::string_view k) override { return inner_->Exists(k); }
  Result<ObjectInfo> Stat(std::string_view k) override { return inner_->Stat(k); }

 private:
  std::shared_ptr<ObjectStore> inner_;
  Hook on_get_;
};

// A mem:// store named after the running test, holding `sizes.size()`
// partitions; row g (counted across partitions) has label g and features
// {g, g+1, ... } (g % 5 of them), so order and completeness can be checked.
struct Fixture {
  std::shared_ptr<ObjectStore> store;
  std::vector<std::string> keys;
  uint64_t total_rows = 0;
  uint64_t total_bytes = 0;
};

Fixture MakeFixture(const std::vector<size_t>& sizes) {
  Fixture f;
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  f.store = *ObjectStore::Open(std::string("mem://prefetch_") + info->name());
  std::string obj;
  for (size_t p = 0; p < sizes.size(); ++p) {
    RowBlock rows;
    for (size_t r = 0; r < sizes[p]; ++r, ++f.total_rows) {
      for (uint32_t i = 0; i < f.total_rows % 5; ++i) {
        rows.AddFeature(static_cast<uint32_t>(f.total_rows) + i, 1);
      }
      rows.EndRow(static_cast<float>(f.total_rows));
    }
    EXPECT_TRUE(EncodePartition(rows.view(), {}, &obj).ok());
    f.keys.push_back("ds/part-" + std::to_string(p));
    EXPECT_TRUE(f.store->Put(f.keys.back(), obj).ok());
    f.total_bytes += obj.size();
  }
  return f;
}

// Drains `it`, checking rows arrive in order, once each; returns rows seen.
uint64_t DrainInOrder(PrefetchIterator& it, const Fixture& f, size_t mb) {
  Minibatch batch;
  uint64_t next_row = 0;
  for (;;) {
    Result<bool> more = it.Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    EXPECT_GT(batch.rows.rows(), 0u);
    if (mb) {
      EXPECT_LE(batch.rows.rows(), mb);
    }
    EXPECT_EQ(*batch.key, f.keys[batch.partition]);
    for (size_t r = 0; r < batch.rows.rows(); ++r, ++next_row) {
      EXPECT_EQ(batch.rows.labels[r], static_cast<float>(next_row));
      auto idx = batch.rows.row_indices(r);
      EXPECT_EQ(idx.size(), next_row % 5);
      if (!idx.empty()) {
        EXPECT_EQ(idx[0], next_row);
      }
    }
  }
  return next_row;
}

TEST(PrefetchIterator, EveryRowOnceInOrder) {
  Fixture f = MakeFixture({37, 0, 200, 1, 450, 0, 0, 199, 201, 64, 3, 1000});
  for (size_t buffers : {1, 2, 3, 8}) {
    for (size_t mb : {1, 7, 64, 200, 1000, 0}) {
      SCOPED_TRACE("buffers " + std::to_string(buffers) + " minibatch " + std::to_string(mb));
      PrefetchIterator it(f.store, f.keys, {mb, buffers, 3});
      EXPECT_EQ(DrainInOrder(it, f, mb), f.total_rows);
      EXPECT_EQ(it.partitions_done(), f.keys.size());
      EXPECT_EQ(it.bytes_fetched(), f.total_bytes);
      Minibatch batch;
      EXPECT_FALSE(*it.Next(&batch));  // stays at the end
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
  for (size_t buffers : {1, 2, 4}) {
    gets = 0;
    PrefetchIterator it(store, base.keys, {20, buffers, 1});
    Minibatch b;
    uint64_t max_ahead = 0;
    while (*it.Next(&b)) {
      std::this_thread::sleep_for(1ms);  // a slow consumer
      uint64_t ahead = gets.load() - it.partitions_done();
      max_ahead = std::max(max_ahead, ahead);
      ASSERT_LE(ahead, buffers);
    }
    EXPECT_EQ(max_ahead, buffers);  // and it does fill every buffer
  }
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
  PrefetchIterator it(down, base.keys, {100, 2, 3});
  Minibatch b;
  ASSERT_TRUE(*it.Next(&b));
  Status s = it.Next(&b).status();
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), base.keys[1] + ": store is down (after 3 attempts)");
  EXPECT_EQ(failures.load(), 1);  // nothing after the fault is fetched
}

TEST(PrefetchIterator, DataWaitGrowsWithSlowStore) {
  Fixture base = MakeFixture({10, 10, 10, 10, 10});
  auto slow = std::make_shared<HookStore>(base.store, [](std::string_view) {
    std::this_thread::sleep_for(20ms);
    return Status::OK();
  });
  PrefetchIterator it(slow, base.keys, {100, 2, 3});
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
