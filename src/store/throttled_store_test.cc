#include "store/throttled_store.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

namespace virga {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// Time stands still until someone sleeps; a sleep jumps to its deadline.
class FakeClock final : public ThrottleClock {
 public:
  nanoseconds Now() override { return now_; }
  void SleepUntil(nanoseconds deadline) override {
    last_deadline_ = deadline;
    if (advance_) now_ = std::max(now_, deadline);
  }
  nanoseconds now_{1s};  // not 0: a booking must not rely on the epoch
  nanoseconds last_deadline_{0};
  bool advance_ = true;
};

std::shared_ptr<ObjectStore> Mem(const std::string& name) {
  return *ObjectStore::Open("mem://throttle_test_" + name);
}

TEST(ThrottledStore, ChargesLatencyPerRequestAndBandwidthPerByte) {
  FakeClock clock;
  ThrottledStore store(Mem("arith"), {20ms, 1e6}, nullptr, &clock);  // 1 byte per us
  const nanoseconds t0 = clock.Now();
  ASSERT_TRUE(store.Put("k", std::string(1000, 'x')).ok());  // 20 ms + 1 ms
  std::string out;
  ASSERT_TRUE(store.Get("k", &out).ok());                 // 20 ms + 1 ms
  ASSERT_TRUE(store.GetRange("k", 100, 500, &out).ok());  // 20 ms + 0.5 ms
  EXPECT_EQ(out.size(), 500u);
  EXPECT_TRUE(store.Get("absent", &out).IsNotFound());  // 20 ms, nothing moved
  ASSERT_TRUE(store.List("").ok());
  ASSERT_TRUE(store.Exists("k").ok());
  ASSERT_TRUE(store.Stat("k").ok());
  ASSERT_TRUE(store.Delete("k").ok());  // 4 x 20 ms
  const ThrottleStats s = store.stats();
  EXPECT_EQ(s.requests, 8u);
  EXPECT_EQ(s.bytes_written, 1000u);
  EXPECT_EQ(s.bytes_read, 1500u);
  EXPECT_EQ(s.slept, 8 * 20ms + 2500us);
  EXPECT_EQ(clock.Now() - t0, s.slept);
  EXPECT_EQ(store.uri(), "mem://throttle_test_arith");
}

TEST(ThrottledStore, ConcurrentTransfersQueueOnTheSharedLink) {
  FakeClock clock;
  clock.advance_ = false;  // as if every transfer started at the same instant
  ThrottleLink link(1e6, &clock);
  EXPECT_EQ(link.Transfer(1000), 1ms);
  EXPECT_EQ(link.Transfer(2000), 3ms);  // waits for the first, then its own 2 ms
  EXPECT_EQ(clock.last_deadline_, clock.Now() + 3ms);
  EXPECT_EQ(link.Transfer(0), 0ms);
  clock.now_ += 10ms;  // the link went idle: no credit is saved up (no burst)
  EXPECT_EQ(link.Transfer(1000), 1ms);

  // Two stores on one link: a transfer of one waits for the other's.
  auto shared = std::make_shared<ThrottleLink>(1e6, &clock);
  ThrottledStore a(Mem("link_a"), {0ns, 1e6}, shared, &clock);
  ThrottledStore b(Mem("link_b"), {0ns, 1e6}, shared, &clock);
  ASSERT_TRUE(a.Put("k", std::string(4000, 'a')).ok());
  ASSERT_TRUE(b.Put("k", std::string(4000, 'b')).ok());
  EXPECT_EQ(a.stats().slept, 4ms);
  EXPECT_EQ(b.stats().slept, 8ms);

  // Every store of one bandwidth shares the process's link.
  EXPECT_EQ(ThrottleLink::ForProcess(60e6), ThrottleLink::ForProcess(60e6));
  EXPECT_NE(ThrottleLink::ForProcess(60e6), ThrottleLink::ForProcess(30e6));
  EXPECT_EQ(ThrottleLink::ForProcess(60e6)->bytes_per_s(), 60e6);
}

TEST(ThrottledStore, RealLatencyIsWaited) {
  ThrottledStore store(Mem("real"), {20ms, 0});
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  ASSERT_TRUE(store.Put("k", "v").ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(store.Get("k", &out).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_GE(store.stats().slept, 100ms);
  EXPECT_EQ(store.stats().requests, 5u);
}

// Sets the throttle's variables for one scope; nullptr unsets.
class ScopedEnv {
 public:
  ScopedEnv(const char* latency, const char* bandwidth) {
    Set("VIRGA_STORE_LATENCY_MS", latency);
    Set("VIRGA_STORE_BANDWIDTH_MBPS", bandwidth);
  }
  ~ScopedEnv() {
    ::unsetenv("VIRGA_STORE_LATENCY_MS");
    ::unsetenv("VIRGA_STORE_BANDWIDTH_MBPS");
  }

 private:
  static void Set(const char* name, const char* value) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
};

TEST(ThrottledStore, MaybeThrottleReadsTheEnvironment) {
  auto inner = Mem("env");
  {
    ScopedEnv env(nullptr, nullptr);
    EXPECT_EQ(*MaybeThrottle(inner), inner);
    ScopedEnv empty("", "");
    EXPECT_EQ(*MaybeThrottle(inner), inner);
  }
  {
    ScopedEnv env("2.5", "60");
    auto r = MaybeThrottle(inner);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto* t = dynamic_cast<ThrottledStore*>(r->get());
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->options().latency, 2500us);
    EXPECT_EQ(t->options().bandwidth_bytes_per_s, 60e6);
    EXPECT_EQ(&t->inner(), inner.get());
    EXPECT_EQ((*r)->uri(), inner->uri());
    // ObjectStore::Open applies it to every scheme.
    auto opened = ObjectStore::Open("mem://throttle_test_env");
    ASSERT_TRUE(opened.ok());
    EXPECT_NE(dynamic_cast<ThrottledStore*>(opened->get()), nullptr);
  }
  {
    ScopedEnv env(nullptr, "12.5");
    auto r = MaybeThrottle(inner);
    ASSERT_TRUE(r.ok());
    auto* t = dynamic_cast<ThrottledStore*>(r->get());
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->options().latency, 0ns);
    EXPECT_EQ(t->options().bandwidth_bytes_per_s, 12.5e6);
  }
}

TEST(ThrottledStore, BadEnvironmentValuesNameTheVariable) {
  struct Case {
    const char* latency;
    const char* bandwidth;
    const char* culprit;
  };
  auto inner = Mem("bad_env");
  for (const Case& c : {Case{"abc", nullptr, "VIRGA_STORE_LATENCY_MS"},
                        Case{"-1", nullptr, "VIRGA_STORE_LATENCY_MS"},
                        Case{"10ms", nullptr, "VIRGA_STORE_LATENCY_MS"},
                        Case{"nan", nullptr, "VIRGA_STORE_LATENCY_MS"},
                        Case{"1e9", nullptr, "VIRGA_STORE_LATENCY_MS"},
                        Case{"10", "0", "VIRGA_STORE_BANDWIDTH_MBPS"},
                        Case{"10", "fast", "VIRGA_STORE_BANDWIDTH_MBPS"},
                        Case{nullptr, "inf", "VIRGA_STORE_BANDWIDTH_MBPS"}}) {
    ScopedEnv env(c.latency, c.bandwidth);
    auto r = MaybeThrottle(inner);
    ASSERT_FALSE(r.ok()) << c.culprit;
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.culprit), std::string::npos) << r.status().ToString();
    auto opened = ObjectStore::Open("mem://throttle_test_bad_env");
    EXPECT_TRUE(opened.status().IsInvalidArgument()) << opened.status().ToString();
  }
}

}  // namespace
}  // namespace virga
