#include "ps/kv_store.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <random>
#include <thread>

namespace virga::ps {
namespace {

using Code = Status::Code;

TEST(KvStore, PutGetVersions) {
  KvStore kv;
  uint64_t v = 0;
  ASSERT_TRUE(kv.Put("a", "one", &v).ok());
  EXPECT_EQ(v, 1u);
  ASSERT_TRUE(kv.Put("a", "two", &v).ok());
  EXPECT_EQ(v, 2u);
  std::string value;
  ASSERT_TRUE(kv.Get("a", &value, &v).ok());
  EXPECT_EQ(value, "two");
  EXPECT_EQ(v, 2u);
  ASSERT_TRUE(kv.Put(std::string("b\0c", 3), std::string("\0\xff", 2)).ok());
  ASSERT_TRUE(kv.Get(std::string("b\0c", 3), &value).ok());
  EXPECT_EQ(value, std::string("\0\xff", 2));
  EXPECT_EQ(kv.size(), 2u);
  Status st = kv.Get("missing", &value);
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find("'missing'"), std::string::npos) << st.ToString();
  EXPECT_TRUE(kv.Put("", "x").IsInvalidArgument());
}

TEST(KvStore, MultiGetWithAbsentKeys) {
  KvStore kv;
  ASSERT_TRUE(kv.Put("x", "1").ok());
  ASSERT_TRUE(kv.Put("z", "3").ok());
  std::vector<std::string> keys = {"x", "y", "z", "x"};
  auto got = kv.MultiGet(keys);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "1");
  EXPECT_FALSE(got[1].has_value());
  EXPECT_EQ(got[2], "3");
  EXPECT_EQ(got[3], "1");
}

TEST(KvStore, DeleteAndByteAccounting) {
  KvStore kv;
  ASSERT_TRUE(kv.Put("key", "12345").ok());
  EXPECT_EQ(kv.total_bytes(), 8u);
  ASSERT_TRUE(kv.Put("key", "1").ok());
  EXPECT_EQ(kv.total_bytes(), 4u);
  EXPECT_TRUE(kv.Delete("key"));
  EXPECT_FALSE(kv.Delete("key"));
  EXPECT_EQ(kv.total_bytes(), 0u);
  EXPECT_EQ(kv.size(), 0u);
  uint64_t v = 0;
  ASSERT_TRUE(kv.Put("key", "again", &v).ok());
  EXPECT_EQ(v, 1u);  // a re-created key starts over (documented ABA)
}

TEST(KvStore, CompareAndSwap) {
  KvStore kv;
  uint64_t cur = 99;
  // Absent: expected 0 succeeds once, then fails.
  auto r = kv.CompareAndSwap("k", 0, "v1", &cur);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(cur, 1u);
  r = kv.CompareAndSwap("k", 0, "other", &cur);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(cur, 1u);
  // Matching version succeeds, stale version fails and leaves the value.
  r = kv.CompareAndSwap("k", 1, "v2", &cur);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(cur, 2u);
  r = kv.CompareAndSwap("k", 1, "stale", &cur);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(cur, 2u);
  std::string value;
  ASSERT_TRUE(kv.Get("k", &value).ok());
  EXPECT_EQ(value, "v2");
  // Absent key with a non-zero expectation fails, reporting 0.
  r = kv.CompareAndSwap("absent", 3, "x", &cur);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(cur, 0u);
  EXPECT_FALSE(kv.Get("absent", &value).ok());
}

TEST(KvStore, AddFloats) {
  KvStore kv;
  std::vector<float> out;
  const std::vector<float> d = {1.5f, -2.0f, 0.25f};
  ASSERT_TRUE(kv.AddFloats("w", d, &out).ok());
  EXPECT_EQ(out, d);
  ASSERT_TRUE(kv.AddFloats("w", d, &out).ok());
  EXPECT_EQ(out, (std::vector<float>{3.0f, -4.0f, 0.5f}));
  std::string raw;
  uint64_t v = 0;
  ASSERT_TRUE(kv.Get("w", &raw, &v).ok());
  EXPECT_EQ(v, 2u);
  ASSERT_EQ(raw.size(), 12u);
  EXPECT_EQ(raw.substr(0, 4), std::string("\x00\x00\x40\x40", 4));  // 3.0f little-endian

  Status st = kv.AddFloats("w", std::vector<float>{1.0f, 2.0f});
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("'w'"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("12 bytes"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("2 floats"), std::string::npos) << st.ToString();
  ASSERT_TRUE(kv.Put("odd", "12345").ok());
  EXPECT_TRUE(kv.AddFloats("odd", std::vector<float>{1.0f}).IsInvalidArgument());
}

TEST(KvStore, AddFloatsConcurrentSumsExactly) {
  KvStore kv;
  constexpr int kThreads = 8, kRounds = 2000, kWidth = 16;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&kv, t] {
      std::vector<float> delta(kWidth);
      for (int i = 0; i < kWidth; ++i) delta[i] = static_cast<float>(i + t);  // small integers: exact
      for (int r = 0; r < kRounds; ++r) {
        ASSERT_TRUE(kv.AddFloats("shared", delta).ok());
        ASSERT_TRUE(kv.AddFloats("own/" + std::to_string(t), delta).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<float> sum;
  ASSERT_TRUE(kv.AddFloats("shared", std::vector<float>(kWidth, 0.0f), &sum).ok());
  for (int i = 0; i < kWidth; ++i) {
    // sum over t of (i + t) * kRounds = kRounds * (8i + 28) <= 2000 * 148 < 2^24
    EXPECT_EQ(sum[i], static_cast<float>(kRounds * (kThreads * i + 28))) << i;
  }
  uint64_t v = 0;
  ASSERT_TRUE(kv.Get("shared", nullptr, &v).ok());
  EXPECT_EQ(v, uint64_t{kThreads} * kRounds + 1);
}

TEST(KvStore, LimitsNameTheKey) {
  KvStore kv(KvLimits{.max_key_bytes = 8, .max_value_bytes = 16, .max_total_bytes = 40});
  Status st = kv.Put("123456789", "v");
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_NE(st.message().find("'123456789'"), std::string::npos) << st.ToString();
  st = kv.Put("big", std::string(17, 'x'));
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_NE(st.message().find("'big'"), std::string::npos) << st.ToString();
  EXPECT_EQ(kv.AddFloats("bigf", std::vector<float>(5)).code(), Code::kResourceExhausted);
  ASSERT_TRUE(kv.Put("a", std::string(15, 'x')).ok());  // 16
  ASSERT_TRUE(kv.Put("b", std::string(15, 'x')).ok());  // 32
  st = kv.Put("c", std::string(8, 'x'));                // 41 > 40
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_NE(st.message().find("'c'"), std::string::npos) << st.ToString();
  EXPECT_EQ(kv.CompareAndSwap("c", 0, std::string(8, 'x'), nullptr).status().code(),
            Code::kResourceExhausted);
  ASSERT_TRUE(kv.Put("c", std::string(7, 'x')).ok());   // exactly 40
  EXPECT_EQ(kv.total_bytes(), 40u);
  ASSERT_TRUE(kv.Put("a", "").ok());                    // shrinking always fits
  EXPECT_EQ(kv.total_bytes(), 25u);
}

TEST(KvStore, ListByPrefixSorted) {
  KvStore kv;
  for (const char* k : {"job/2/b", "job/1", "job/10", "other", "job/2/a", "jo"}) {
    ASSERT_TRUE(kv.Put(k, "").ok());
  }
  EXPECT_EQ(kv.List("job/"), (std::vector<std::string>{"job/1", "job/10", "job/2/a", "job/2/b"}));
  EXPECT_EQ(kv.List("job/2/"), (std::vector<std::string>{"job/2/a", "job/2/b"}));
  EXPECT_EQ(kv.List("").size(), 6u);
  EXPECT_TRUE(kv.List("nope").empty());
}

// A small store with binary keys and values and versions > 1.
KvStore SmallStore() {
  KvStore kv;
  EXPECT_TRUE(kv.Put("alpha", "1").ok());
  EXPECT_TRUE(kv.Put("alpha", "22").ok());
  EXPECT_TRUE(kv.Put(std::string("b\0", 2), std::string("\xff\0", 2)).ok());
  EXPECT_TRUE(kv.AddFloats("w", std::vector<float>{1.0f, 2.0f}).ok());
  EXPECT_TRUE(kv.Put("empty", "").ok());
  return kv;
}

void ExpectSameContent(const KvStore& a, const KvStore& b) {
  ASSERT_EQ(a.List(""), b.List(""));
  EXPECT_EQ(a.total_bytes(), b.total_bytes());
  EXPECT_EQ(a.size(), b.size());
  for (const std::string& k : a.List("")) {
    std::string va, vb;
    uint64_t na = 0, nb = 0;
    ASSERT_TRUE(a.Get(k, &va, &na).ok());
    ASSERT_TRUE(b.Get(k, &vb, &nb).ok());
    EXPECT_EQ(va, vb) << k;
    EXPECT_EQ(na, nb) << k;
  }
}

TEST(KvStoreSnapshot, RoundTrip) {
  KvStore kv = SmallStore();
  std::string blob;
  kv.Serialize(&blob);
  KvStore restored;
  ASSERT_TRUE(restored.Put("stale", "gone after restore").ok());
  ASSERT_TRUE(restored.Restore(blob, "mem://ckpt/kv").ok());
  ExpectSameContent(kv, restored);
  EXPECT_FALSE(restored.Get("stale", nullptr).ok());
  std::string again;
  restored.Serialize(&again);
  EXPECT_EQ(again, blob);  // deterministic bytes

  KvStore empty, empty2;
  empty.Serialize(&blob);
  ASSERT_TRUE(empty2.Restore(blob, "e").ok());
  EXPECT_EQ(empty2.size(), 0u);
}

TEST(KvStoreSnapshot, EveryFlippedByteOrTruncationIsCorruption) {
  KvStore kv = SmallStore();
  std::string blob;
  kv.Serialize(&blob);
  KvStore target;
  ASSERT_TRUE(target.Put("keep", "me").ok());
  for (size_t i = 0; i < blob.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = blob;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      Status st = target.Restore(bad, "ckpt/kv-7");
      ASSERT_TRUE(st.IsCorruption()) << "byte " << i << ": " << st.ToString();
      ASSERT_NE(st.message().find("ckpt/kv-7"), std::string::npos) << st.ToString();
    }
  }
  for (size_t n = 0; n < blob.size(); ++n) {
    ASSERT_TRUE(target.Restore(std::string_view(blob).substr(0, n), "t").IsCorruption()) << n;
  }
  EXPECT_TRUE(target.Restore(blob + "x", "t").IsCorruption());
  EXPECT_EQ(target.List(""), std::vector<std::string>{"keep"});  // unchanged by failures
}

// Damage that the checksum does not catch (the blob is re-checksummed) must
// still be rejected or accepted cleanly, never crash or over-read.
TEST(KvStoreSnapshot, RechecksummedDamageNeverCrashes) {
  KvStore kv = SmallStore();
  std::string blob;
  kv.Serialize(&blob);
  auto reseal = [](std::string body) {
    uint64_t h = XXH3_64bits(body.data(), body.size());
    for (int i = 0; i < 8; ++i) body.push_back(static_cast<char>(h >> (8 * i)));
    return body;
  };
  const std::string body = blob.substr(0, blob.size() - 8);
  int ok = 0, rejected = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    for (int value : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string bad = body;
      bad[i] = static_cast<char>(value);
      KvStore target;
      Status st = target.Restore(reseal(bad), "fuzz");
      if (st.ok()) {
        ++ok;
      } else {
        ++rejected;
        ASSERT_TRUE(st.IsCorruption() || st.code() == Status::Code::kResourceExhausted) << st.ToString();
      }
    }
  }
  std::mt19937_64 rng(42);
  for (int t = 0; t < 2000; ++t) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (t % 2 == 0 && junk.size() >= 8) junk.replace(0, 8, body.substr(0, 8));  // valid magic+format
    KvStore target;
    (void)target.Restore(reseal(junk), "fuzz");
    (void)target.Restore(junk, "fuzz");
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(rejected, 0);
}

TEST(KvStoreSnapshot, RestoreEnforcesLimits) {
  KvStore kv;
  ASSERT_TRUE(kv.Put("large", std::string(100, 'x')).ok());
  std::string blob;
  kv.Serialize(&blob);
  KvStore small(KvLimits{.max_key_bytes = 64, .max_value_bytes = 1 << 10, .max_total_bytes = 50});
  Status st = small.Restore(blob, "ckpt");
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("'large'"), std::string::npos) << st.ToString();
  EXPECT_EQ(small.size(), 0u);
}

TEST(KvStore, ConcurrentMixedOperations) {
  KvStore kv;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&kv, t] {
      std::string value, blob;
      for (int i = 0; i < 500; ++i) {
        std::string key = "k/" + std::to_string((i * 7 + t) % 50);
        ASSERT_TRUE(kv.Put(key, std::to_string(i)).ok());
        (void)kv.Get(key, &value);
        uint64_t cur = 0;
        ASSERT_TRUE(kv.CompareAndSwap(key, 0, "x", &cur).ok());
        if (i % 5 == 0) kv.Delete(key);
        if (i % 100 == 0) {
          kv.List("k/");
          kv.Serialize(&blob);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t sum = 0;
  for (const std::string& k : kv.List("")) {
    std::string v;
    ASSERT_TRUE(kv.Get(k, &v).ok());
    sum += k.size() + v.size();
  }
  EXPECT_EQ(kv.total_bytes(), sum);
  EXPECT_EQ(kv.size(), kv.List("").size());
}

}  // namespace
}  // namespace virga::ps
