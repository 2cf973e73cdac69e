#include "ps/work_queue.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

namespace virga::ps {
namespace {

using std::chrono::milliseconds;

// A thread-safe clock that moves only when told to.
class FakeClock {
 public:
  WorkQueues::Clock fn() const {
    return [ms = ms_] { return std::chrono::steady_clock::time_point(milliseconds(ms->load())); };
  }
  void Advance(milliseconds d) { ms_->fetch_add(d.count()); }

 private:
  std::shared_ptr<std::atomic<int64_t>> ms_ = std::make_shared<std::atomic<int64_t>>(1000);
};

std::vector<std::string> Payloads(int n, const std::string& prefix = "p") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(WorkQueues, FifoOrder) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  auto ids = q.Enqueue("epoch-1", Payloads(3));
  auto more = q.Enqueue("epoch-1", Payloads(2, "q"));
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_LT(ids[2], more[0]);
  std::vector<std::string> got;
  std::set<uint64_t> leases;
  while (auto item = q.Lease("epoch-1", "w", milliseconds(100))) {
    got.push_back(item->payload);
    EXPECT_EQ(item->attempt, 1u);
    EXPECT_TRUE(leases.insert(item->lease_id).second);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"p0", "p1", "p2", "q0", "q1"}));
  EXPECT_FALSE(q.Lease("unknown", "w", milliseconds(100)).has_value());
}

TEST(WorkQueues, ExpiryReturnsItemToFrontInItemOrder) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  auto ids = q.Enqueue("q", Payloads(5));
  auto a = q.Lease("q", "w1", milliseconds(10));
  auto b = q.Lease("q", "w2", milliseconds(100));
  auto c = q.Lease("q", "w3", milliseconds(10));
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(a->item_id, b->item_id);
  clock.Advance(milliseconds(9));
  EXPECT_EQ(q.Stats("q").leased, 3u);
  clock.Advance(milliseconds(1));  // a and c are due (deadline <= now)
  Status st = q.Ack("q", a->lease_id);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  QueueStats s = q.Stats("q");
  EXPECT_EQ(s.expired, 2u);
  EXPECT_EQ(s.pending, 4u);
  EXPECT_EQ(s.leased, 1u);
  auto r1 = q.Lease("q", "w4", milliseconds(100));
  auto r2 = q.Lease("q", "w4", milliseconds(100));
  auto r3 = q.Lease("q", "w4", milliseconds(100));
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->item_id, ids[0]);
  EXPECT_EQ(r1->attempt, 2u);
  EXPECT_EQ(r1->payload, "p0");
  EXPECT_EQ(r2->item_id, ids[2]);
  EXPECT_EQ(r2->attempt, 2u);
  EXPECT_EQ(r3->item_id, ids[3]);
  EXPECT_EQ(r3->attempt, 1u);
  EXPECT_TRUE(q.Ack("q", b->lease_id).ok());
  EXPECT_TRUE(q.Ack("q", b->lease_id).IsNotFound());  // already done
  EXPECT_TRUE(q.Ack("q", r1->lease_id).ok());
  EXPECT_TRUE(q.Ack("nope", r2->lease_id).IsNotFound());
}

TEST(WorkQueues, ReleaseAndRenew) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  auto ids = q.Enqueue("q", Payloads(2));
  auto a = q.Lease("q", "w", milliseconds(100));
  ASSERT_TRUE(q.Release("q", a->lease_id).ok());
  EXPECT_TRUE(q.Ack("q", a->lease_id).IsNotFound());
  EXPECT_TRUE(q.Release("q", a->lease_id).IsNotFound());
  auto again = q.Lease("q", "w", milliseconds(100));
  EXPECT_EQ(again->item_id, ids[0]);
  EXPECT_EQ(again->attempt, 2u);
  EXPECT_NE(again->lease_id, a->lease_id);

  clock.Advance(milliseconds(80));
  ASSERT_TRUE(q.Renew("q", again->lease_id, milliseconds(100)).ok());
  clock.Advance(milliseconds(80));  // 160 ms after the lease, 80 after the renewal
  EXPECT_TRUE(q.Ack("q", again->lease_id).ok());
  EXPECT_TRUE(q.Renew("q", again->lease_id, milliseconds(100)).IsNotFound());
  EXPECT_TRUE(q.Renew("q", 12345, milliseconds(0)).IsInvalidArgument());

  auto b = q.Lease("q", "w", milliseconds(50));
  clock.Advance(milliseconds(50));
  EXPECT_TRUE(q.Renew("q", b->lease_id, milliseconds(100)).IsNotFound());  // too late
  EXPECT_EQ(q.Stats("q").pending, 1u);
}

TEST(WorkQueues, StatsDropList) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  q.Enqueue("b", Payloads(4));
  q.Enqueue("a", Payloads(1));
  auto x = q.Lease("b", "w", milliseconds(10));
  auto y = q.Lease("b", "w", milliseconds(1000));
  ASSERT_TRUE(q.Ack("b", y->lease_id).ok());
  clock.Advance(milliseconds(10));
  QueueStats s = q.Stats("b");
  EXPECT_EQ(s.enqueued, 4u);
  EXPECT_EQ(s.acked, 1u);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_EQ(s.pending, 3u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(q.List(), (std::vector<std::string>{"a", "b"}));
  q.Drop("b");
  q.Drop("never-existed");
  EXPECT_EQ(q.List(), std::vector<std::string>{"a"});
  EXPECT_EQ(q.Stats("b").enqueued, 0u);
  EXPECT_TRUE(q.Ack("b", x->lease_id).IsNotFound());
}

TEST(WorkQueues, TwoWorkersNeverHoldTheSameItem) {
  WorkQueues q;  // real clock; leases far longer than the test
  constexpr int kItems = 2000;
  q.Enqueue("q", Payloads(kItems));
  std::vector<std::vector<uint64_t>> held(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      while (auto item = q.Lease("q", "w" + std::to_string(t), milliseconds(600000))) {
        held[t].push_back(item->item_id);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& h : held) {
    for (uint64_t id : h) EXPECT_TRUE(all.insert(id).second) << "item " << id << " leased twice";
  }
  EXPECT_EQ(all.size(), size_t{kItems});
  EXPECT_EQ(q.Stats("q").leased, uint64_t{kItems});
}

// 4 workers lease and ack 10,000 items; each item's first lease is abandoned
// for one item in ten. The clock jumps past every deadline when the queue is
// empty and no worker is mid-item (expiring the abandoned leases), and now and
// then mid-stream (expiring live leases too, whose acks then fail and whose
// items are redone).
TEST(WorkQueues, AtLeastOnceUnderConcurrency) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  constexpr int kItems = 10000;
  const uint64_t first = q.Enqueue("q", Payloads(kItems))[0];
  std::vector<std::atomic<int>> processed(kItems), acks(kItems);
  std::atomic<int> acked_total{0}, failed_acks{0};
  std::atomic<int> busy{0};  // workers holding an item they mean to ack
  // One lease/ack round; false if nothing was pending.
  auto work_once = [&](const std::string& worker, bool* leased) {
    auto item = q.Lease("q", worker, milliseconds(1000));
    *leased = item.has_value();
    if (!item) return;
    // A jump that lands before this increment just costs one failed ack.
    busy.fetch_add(1);
    struct Done {
      std::atomic<int>& n;
      ~Done() { n.fetch_sub(1); }
    } done{busy};
    const uint64_t i = item->item_id - first;
    ASSERT_LT(i, uint64_t{kItems});
    ASSERT_EQ(item->payload, "p" + std::to_string(i));
    processed[i].fetch_add(1);
    if (item->attempt == 1 && i % 10 == 0) return;  // the worker "dies"
    // Jumps past every deadline: this lease and other live ones expire.
    if (item->attempt == 1 && i % 250 == 7) clock.Advance(milliseconds(1001));
    Status st = q.Ack("q", item->lease_id);
    if (st.ok()) {
      acks[i].fetch_add(1);
      acked_total.fetch_add(1);
    } else {
      ASSERT_TRUE(st.IsNotFound()) << st.ToString();
      failed_acks.fetch_add(1);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string worker = "w" + std::to_string(t);
      while (acked_total.load() < kItems && !::testing::Test::HasFailure()) {
        bool leased = false;
        work_once(worker, &leased);
        if (leased) continue;
        // Nothing pending: what is out is abandoned or about to be acked.
        // Expire it, but only while no worker is mid-item.
        if (busy.load() == 0) clock.Advance(milliseconds(1001));
        std::this_thread::yield();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kItems; ++i) {
    ASSERT_EQ(acks[i].load(), 1) << "item " << i;  // acked, and only one ack can succeed
    ASSERT_GE(processed[i].load(), i % 10 == 0 ? 2 : 1) << "item " << i;
  }
  QueueStats s = q.Stats("q");
  EXPECT_EQ(s.acked, uint64_t{kItems});
  EXPECT_EQ(s.pending, 0u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_GE(s.expired, uint64_t{kItems / 10});
  EXPECT_GE(failed_acks.load(), kItems / 250);  // at least each mid-stream jumper's own ack
  EXPECT_GE(s.expired, uint64_t(kItems / 10 + failed_acks.load()));
}

// A checkpoint, then more leases, then a restore of that checkpoint (a server
// that crashed and came back): the leases granted after the checkpoint may
// still be held by workers, so their ids are never granted again.
TEST(WorkQueuesSnapshot, LeaseIdsGrantedAfterTheCheckpointAreNeverReissued) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  q.Enqueue("train", Payloads(3));
  std::string blob;
  q.Serialize(&blob);
  std::vector<uint64_t> held;
  for (int i = 0; i < 3; ++i) held.push_back(q.Lease("train", "w", milliseconds(100))->lease_id);
  ASSERT_TRUE(q.Restore(blob, "mem://ckpt/queues").ok());
  for (int i = 0; i < 3; ++i) {
    auto l = q.Lease("train", "w", milliseconds(100));
    ASSERT_TRUE(l);
    for (uint64_t old : held) EXPECT_NE(l->lease_id, old);
  }
  for (uint64_t old : held) EXPECT_TRUE(q.Ack("train", old).IsNotFound());
  EXPECT_EQ(q.Stats("train").leased, 3u);  // the holders' acks ended none of the new leases
}

TEST(WorkQueuesSnapshot, RoundTripLeasedBecomePending) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  auto ids = q.Enqueue("train", Payloads(4));
  q.Enqueue("empty", {});
  q.Enqueue(std::string("bin\0", 4), std::vector<std::string>{std::string("\0\xff", 2)});
  auto a = q.Lease("train", "w", milliseconds(100));  // ids[0], will be acked
  auto b = q.Lease("train", "w", milliseconds(100));  // ids[1], stays leased
  ASSERT_TRUE(q.Release("train", b->lease_id).ok());
  b = q.Lease("train", "w", milliseconds(100));       // ids[1] again, attempt 2
  auto c = q.Lease("train", "w", milliseconds(100));  // ids[2], stays leased
  ASSERT_TRUE(q.Ack("train", a->lease_id).ok());
  std::string blob;
  q.Serialize(&blob);

  WorkQueues r(clock.fn());
  r.Enqueue("stale", Payloads(1));
  ASSERT_TRUE(r.Restore(blob, "mem://ckpt/queues").ok());
  EXPECT_EQ(r.List(), (std::vector<std::string>{std::string("bin\0", 4), "empty", "train"}));
  QueueStats s = r.Stats("train");
  EXPECT_EQ(s.pending, 3u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(s.acked, 1u);
  EXPECT_EQ(s.enqueued, 4u);
  // Old leases are dead, and their ids are never reused.
  EXPECT_TRUE(r.Ack("train", b->lease_id).IsNotFound());
  auto r1 = r.Lease("train", "w", milliseconds(100));
  auto r2 = r.Lease("train", "w", milliseconds(100));
  auto r3 = r.Lease("train", "w", milliseconds(100));
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_GT(r1->lease_id, c->lease_id);
  EXPECT_EQ(r1->item_id, ids[1]);
  EXPECT_EQ(r1->attempt, 3u);
  EXPECT_EQ(r2->item_id, ids[2]);
  EXPECT_EQ(r2->attempt, 2u);
  EXPECT_EQ(r3->item_id, ids[3]);
  EXPECT_EQ(r3->attempt, 1u);
  EXPECT_EQ(r3->payload, "p3");
  auto bin = r.Lease(std::string("bin\0", 4), "w", milliseconds(100));
  ASSERT_TRUE(bin.has_value());
  EXPECT_EQ(bin->payload, std::string("\0\xff", 2));
  EXPECT_GT(r.Enqueue("train", Payloads(1))[0], ids[3]);
}

TEST(WorkQueuesSnapshot, DamageIsCorruptionNeverACrash) {
  FakeClock clock;
  WorkQueues q(clock.fn());
  q.Enqueue("a", Payloads(3));
  q.Enqueue("b", Payloads(1));
  q.Lease("a", "w", milliseconds(10));
  std::string blob;
  q.Serialize(&blob);
  WorkQueues target(clock.fn());
  target.Enqueue("keep", Payloads(1));
  for (size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    Status st = target.Restore(bad, "ckpt/q-3");
    ASSERT_TRUE(st.IsCorruption()) << i << ": " << st.ToString();
    ASSERT_NE(st.message().find("ckpt/q-3"), std::string::npos);
  }
  for (size_t n = 0; n < blob.size(); ++n) {
    ASSERT_TRUE(target.Restore(std::string_view(blob).substr(0, n), "t").IsCorruption()) << n;
  }
  EXPECT_EQ(target.List(), std::vector<std::string>{"keep"});
  // Re-checksummed damage: parsed defensively.
  const std::string body = blob.substr(0, blob.size() - 8);
  for (size_t i = 0; i < body.size(); ++i) {
    for (int v : {0x00, 0x01, 0x80, 0xff}) {
      std::string bad = body;
      bad[i] = static_cast<char>(v);
      uint64_t h = XXH3_64bits(bad.data(), bad.size());
      for (int k = 0; k < 8; ++k) bad.push_back(static_cast<char>(h >> (8 * k)));
      WorkQueues fresh(clock.fn());
      Status st = fresh.Restore(bad, "fuzz");
      ASSERT_TRUE(st.ok() || st.IsCorruption()) << st.ToString();
    }
  }
}

}  // namespace
}  // namespace virga::ps
