// PrefetchIterator with several fetches in flight: completion in any order,
// delivery in key order, faults and Stop among concurrent fetches.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "prefetch_test_util.h"
#include "virga/prefetch_iterator.h"

namespace virga {
namespace {

using namespace std::chrono_literals;
using prefetch_test::DrainInOrder;
using prefetch_test::Fixture;
using prefetch_test::HookStore;
using prefetch_test::MakeFixture;

size_t PartitionOf(std::string_view key) {
  return std::stoul(std::string(key.substr(key.rfind('-') + 1)));
}

TEST(PrefetchIteratorFetches, OutOfOrderCompletionIsDeliveredInOrder) {
  // The Gets of each group of 4 partitions finish in reverse order: the Get
  // of partition p returns only after those of p+1 .. the group's end have.
  constexpr size_t kGroup = 4, kParts = 14;
  Fixture base = MakeFixture({5, 9, 0, 3, 7, 1, 8, 2, 6, 4, 0, 11, 3, 5});
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> finished;  // GUARDED_BY(mu): partitions in the order their Gets returned
  std::vector<bool> done(kParts, false);
  auto store = std::make_shared<HookStore>(base.store, [&](std::string_view key) {
    const size_t p = PartitionOf(key);
    const size_t end = std::min(kParts, (p / kGroup + 1) * kGroup);
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, 5s, [&] {  // the timeout only turns a hang into a failure
      for (size_t q = p + 1; q < end; ++q) {
        if (!done[q]) return false;
      }
      return true;
    });
    done[p] = true;
    finished.push_back(p);
    cv.notify_all();
    return Status::OK();
  });
  PrefetchIterator it(store, base.keys, {3, 0, 1, kGroup});
  EXPECT_EQ(DrainInOrder(it, base, 3), base.total_rows);
  EXPECT_EQ(it.partitions_done(), kParts);
  std::lock_guard<std::mutex> l(mu);
  EXPECT_EQ(finished, (std::vector<size_t>{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 13, 12}));
}

TEST(PrefetchIteratorFetches, KeepsTheRequestedFetchesInFlight) {
  Fixture base = MakeFixture(std::vector<size_t>(24, 10));
  std::atomic<int> in_flight{0}, max_in_flight{0};
  auto store = std::make_shared<HookStore>(base.store, [&](std::string_view) {
    const int now = in_flight.fetch_add(1) + 1;
    for (int seen = max_in_flight.load();
         now > seen && !max_in_flight.compare_exchange_weak(seen, now);) {
    }
    std::this_thread::sleep_for(15ms);
    in_flight.fetch_sub(1);
    return Status::OK();
  });
  for (size_t fetches : {1, 3, 6}) {
    SCOPED_TRACE(std::to_string(fetches) + " fetches");
    max_in_flight = 0;
    std::atomic<bool> in_source{false};
    std::atomic<int> overlapping_calls{0};
    size_t next = 0;
    PrefetchIterator it(store,
                        [&]() -> std::optional<std::string> {
                          if (in_source.exchange(true)) ++overlapping_calls;
                          std::this_thread::sleep_for(100us);
                          std::optional<std::string> key;
                          if (next < base.keys.size()) key = base.keys[next++];
                          in_source = false;
                          return key;
                        },
                        {10, 2, 1, fetches});
    EXPECT_EQ(DrainInOrder(it, base, 10), base.total_rows);  // keys taken in order
    EXPECT_EQ(max_in_flight.load(), static_cast<int>(fetches));
    EXPECT_EQ(overlapping_calls.load(), 0);  // one KeySource call at a time
  }
}

TEST(PrefetchIteratorFetches, FaultInTheMiddleSurfacesInOrder) {
  // Partition 5's Get is slow and fails; the ones after it finish first.
  Fixture base = MakeFixture(std::vector<size_t>(12, 10));
  auto store = std::make_shared<HookStore>(base.store, [&](std::string_view key) {
    if (key != base.keys[5]) return Status::OK();
    std::this_thread::sleep_for(30ms);
    return Status::Unavailable("throttled");
  });
  std::atomic<size_t> keys_taken{0};
  PrefetchIterator it(store,
                      [&]() -> std::optional<std::string> {
                        size_t i = keys_taken.fetch_add(1);
                        if (i >= base.keys.size()) return std::nullopt;
                        return base.keys[i];
                      },
                      {4, 0, 2, 4});
  Minibatch b;
  uint64_t rows = 0;
  Result<bool> more = true;
  while ((more = it.Next(&b)).ok() && *more) rows += b.rows.rows();
  EXPECT_EQ(rows, 50u);  // partitions 0..4, then the fault
  EXPECT_EQ(more.status().code(), Status::Code::kUnavailable) << more.status().ToString();
  EXPECT_EQ(more.status().message(), base.keys[5] + ": throttled (after 2 attempts)");
  EXPECT_EQ(it.partitions_done(), 5u);
  EXPECT_EQ(it.Next(&b).status().code(), Status::Code::kUnavailable);  // sticky
  // Keys are taken at most a ring of buffers past the last released partition.
  EXPECT_LE(keys_taken.load(), 5u + 5u);
}

TEST(PrefetchIteratorFetches, StopWhileFetchesBlock) {
  Fixture base = MakeFixture(std::vector<size_t>(40, 10));
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;  // GUARDED_BY(mu): the store answers
  std::atomic<int> gets{0};
  auto stuck = std::make_shared<HookStore>(base.store, [&](std::string_view) {
    ++gets;
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, 10s, [&] { return open; });
    return Status::OK();
  });
  std::thread opener;
  const auto start = std::chrono::steady_clock::now();
  {
    PrefetchIterator it(stuck, base.keys, {4, 0, 3, 4});
    std::thread stopper([&] {
      std::this_thread::sleep_for(20ms);
      it.Stop();
    });
    Minibatch b;
    EXPECT_FALSE(*it.Next(&b));  // returns on Stop, with every Get still blocked
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    stopper.join();
    EXPECT_EQ(gets.load(), 4);
    opener = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      std::lock_guard<std::mutex> l(mu);
      open = true;
      cv.notify_all();
    });
  }  // the destructor waits for the 4 Gets, which return once opened
  opener.join();
  EXPECT_EQ(gets.load(), 4);  // none started after Stop
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace virga
