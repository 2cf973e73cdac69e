// End-to-end tests of the parameter server through its client: an embedded
// PsServer on a loopback port, driven by PsClient.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <nlohmann/json.hpp>
#include <thread>

#include "net/rpc.h"
#include "ps/protocol.h"
#include "ps/server.h"
#include "virga/ps_client.h"

namespace virga {
namespace {

constexpr char kToken[] = "test-token-123";

std::unique_ptr<ps::PsServer> StartServer(const std::string& ckpt = "", const std::string& name = "",
                                          bool restore = false) {
  ps::PsServerOptions o;
  o.net.token = kToken;
  o.net.port = 0;
  o.net.spin = std::chrono::microseconds(0);
  o.checkpoint_uri = ckpt;
  o.name = name;
  o.restore = restore;
  auto s = std::make_unique<ps::PsServer>(o);
  Status st = s->Start();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

std::unique_ptr<PsClient> Connect(std::vector<ps::PsServer*> servers, std::string token = kToken) {
  PsClientOptions o;
  for (auto* s : servers) o.servers.push_back("127.0.0.1:" + std::to_string(s->port()));
  o.token = std::move(token);
  o.connect_attempts = 1;
  auto c = PsClient::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

TableConfig SgdTable(const std::string& name, float lr = 0.5f, uint32_t width = 1) {
  TableConfig t;
  t.name = name;
  t.width = width;
  t.optimizer.kind = OptimizerKind::kSgd;
  t.optimizer.learning_rate = lr;
  return t;
}

TEST(PsService, PullPushFollowsSgdAndCountsVersions) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->CreateTable(SgdTable("w", 0.5f, 2)).ok());
  EXPECT_EQ(c->CreateTable(SgdTable("w")).code(), Status::Code::kAlreadyExists);
  std::vector<uint64_t> keys = {7, 1ull << 60, 3};
  std::vector<float> out(6, -1);
  uint64_t version = 99;
  ASSERT_TRUE(c->Pull("w", keys, out, &version).ok());
  EXPECT_EQ(out, std::vector<float>(6, 0.0f));
  EXPECT_EQ(version, 0u);
  std::vector<float> g = {1, 2, 3, 4, 5, 6};
  ASSERT_TRUE(c->Push("w", keys, g).ok());
  ASSERT_TRUE(c->Push("w", keys, g).ok());
  ASSERT_TRUE(c->Pull("w", keys, out, &version).ok());
  for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out[i], -2 * 0.5f * g[i]);
  EXPECT_EQ(version, 2u);
  EXPECT_TRUE(c->Pull("nope", keys, out).IsNotFound());
}

TEST(PsService, PipelinedPullsAndPushesKeepOrder) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  ASSERT_TRUE(c->CreateTable(SgdTable("p", 1.0f)).ok());
  std::vector<uint64_t> keys = {1, 2, 3};
  std::vector<float> out(3);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(c->StartPush("p", keys, std::vector<float>{1, 1, 1}).ok());
    ASSERT_TRUE(c->StartPull("p", keys, out).ok());
    uint64_t v = 0;
    ASSERT_TRUE(c->FinishPull(&v).ok());
    EXPECT_EQ(out[0], -static_cast<float>(i));  // the push before it was applied first
    EXPECT_EQ(v, static_cast<uint64_t>(i));
  }
  EXPECT_TRUE(c->Flush().ok());
  // A failed pipelined push surfaces at Flush.
  ASSERT_TRUE(c->StartPush("missing", keys, std::vector<float>{1, 1, 1}).ok());
  EXPECT_TRUE(c->Flush().IsNotFound());
}

// A held pull goes out with the push after it (or with FinishPull alone),
// on one server and sharded over two: the pull is applied before the push.
TEST(PsService, HeldPullsTravelWithTheNextRequest) {
  auto a = StartServer(), b = StartServer();
  for (bool two : {false, true}) {
    SCOPED_TRACE(two);
    auto c = two ? Connect({a.get(), b.get()}) : Connect({a.get()});
    const std::string table = two ? "h2" : "h1";
    ASSERT_TRUE(c->CreateTable(SgdTable(table, 1.0f)).ok());
    std::vector<uint64_t> keys;
    for (uint64_t k = 0; k < 300; ++k) keys.push_back(k * 131 + 7);
    std::vector<float> out(keys.size()), ones(keys.size(), 1.0f);
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(c->StartPull(table, keys, out, /*with_next=*/true).ok());
      if (i % 2 == 0) {
        ASSERT_TRUE(c->StartPush(table, keys, ones).ok());
      }
      uint64_t v = 0;
      ASSERT_TRUE(c->FinishPull(&v).ok());
      // Pushes so far, before this pull: i / 2 rounded up, each -1 per key.
      const auto before = static_cast<float>((i + 1) / 2);
      for (size_t k = 0; k < keys.size(); ++k) ASSERT_EQ(out[k], -before) << i << " " << k;
    }
    EXPECT_TRUE(c->Flush().ok());
    ASSERT_TRUE(c->Pull(table, keys, out).ok());
    EXPECT_EQ(out[0], -10.0f);
    // A held push goes out with the next pull, which then sees it applied;
    // one whose keys all live on the other server is sent by FinishPull.
    for (int i = 1; i <= 5; ++i) {
      ASSERT_TRUE(c->StartPush(table, keys, ones, /*with_next=*/true).ok());
      ASSERT_TRUE(c->Pull(table, keys, out).ok());
      ASSERT_EQ(out[0], -10.0f - static_cast<float>(i));
    }
    ASSERT_TRUE(c->StartPush(table, keys, ones, /*with_next=*/true).ok());
    ASSERT_TRUE(c->StartPull(table, std::span<const uint64_t>(keys).first(1),
                             std::span<float>(out).first(1)).ok());
    ASSERT_TRUE(c->FinishPull().ok());
    EXPECT_TRUE(c->Flush().ok());
    ASSERT_TRUE(c->Pull(table, keys, out).ok());
    for (size_t k = 0; k < keys.size(); ++k) ASSERT_EQ(out[k], -16.0f) << k;
  }
}

TEST(PsService, TwoServersShardKeysAndAgreeWithOne) {
  auto a = StartServer(), b = StartServer(), single = StartServer();
  auto two = Connect({a.get(), b.get()});
  auto one = Connect({single.get()});
  for (auto* c : {two.get(), one.get()}) ASSERT_TRUE(c->CreateTable(SgdTable("s", 0.25f, 3)).ok());
  std::vector<uint64_t> keys;
  std::vector<float> g;
  for (uint64_t k = 0; k < 500; ++k) {
    keys.push_back(k * 7919 + 13);
    for (int j = 0; j < 3; ++j) g.push_back(static_cast<float>((k + j) % 11) - 5);
  }
  for (auto* c : {two.get(), one.get()}) ASSERT_TRUE(c->Push("s", keys, g).ok());
  std::vector<float> o2(keys.size() * 3), o1(keys.size() * 3);
  ASSERT_TRUE(two->Pull("s", keys, o2).ok());
  ASSERT_TRUE(one->Pull("s", keys, o1).ok());
  EXPECT_EQ(o1, o2);
  // Both servers hold part of the keys.
  auto sa = a->service().FindTable("s")->stats().rows, sb = b->service().FindTable("s")->stats().rows;
  EXPECT_EQ(sa + sb, 500u);
  EXPECT_GT(sa, 150u);
  EXPECT_GT(sb, 150u);
  std::vector<std::pair<uint64_t, std::vector<float>>> dump;
  ASSERT_TRUE(two->DumpTable("s", &dump).ok());
  ASSERT_EQ(dump.size(), 500u);
  // Sorted by key, each row the weights a pull returns.
  for (size_t i = 0; i < dump.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(dump[i - 1].first, dump[i].first);
    }
    const size_t k = (dump[i].first - 13) / 7919;
    ASSERT_EQ(keys[k], dump[i].first);
    EXPECT_EQ(dump[i].second, std::vector<float>(o1.begin() + 3 * k, o1.begin() + 3 * k + 3)) << k;
  }
}

TEST(PsService, KeyValueAndCasAndAddFloats) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  auto v1 = c->Put("job/1/state", "running");
  ASSERT_TRUE(v1.ok());
  std::string value;
  uint64_t version = 0;
  ASSERT_TRUE(c->Get("job/1/state", &value, &version).ok());
  EXPECT_EQ(value, "running");
  EXPECT_EQ(version, *v1);
  EXPECT_TRUE(c->Get("absent", &value).IsNotFound());
  uint64_t cur = 0;
  EXPECT_FALSE(*c->CompareAndSwap("job/1/state", version + 5, "x", &cur));
  EXPECT_EQ(cur, version);
  EXPECT_TRUE(*c->CompareAndSwap("job/1/state", version, "done", &cur));
  ASSERT_TRUE(c->Get("job/1/state", &value).ok());
  EXPECT_EQ(value, "done");
  std::vector<float> sum;
  ASSERT_TRUE(c->AddFloats("acc", std::vector<float>{1, 2}, &sum).ok());
  ASSERT_TRUE(c->AddFloats("acc", std::vector<float>{0.5f, 4}, &sum).ok());
  EXPECT_EQ(sum, (std::vector<float>{1.5f, 6}));
  EXPECT_TRUE(*c->Delete("acc"));
  EXPECT_FALSE(*c->Delete("acc"));
}

TEST(PsService, QueueLeasesAckAndRelease) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  std::vector<std::string> items = {"part-0", "part-1", "part-2"};
  auto ids = c->Enqueue("epoch-1", items);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->size(), 3u);
  auto l1 = c->Lease("epoch-1", "w1", std::chrono::seconds(30));
  ASSERT_TRUE(l1.ok() && l1->has_value());
  EXPECT_EQ((*l1)->payload, "part-0");
  ASSERT_TRUE(c->Ack("epoch-1", (*l1)->lease_id).ok());
  auto l2 = c->Lease("epoch-1", "w2", std::chrono::seconds(30));
  ASSERT_TRUE(c->Release("epoch-1", (*l2)->lease_id).ok());
  auto l3 = c->Lease("epoch-1", "w3", std::chrono::seconds(30));
  EXPECT_EQ((*l3)->payload, "part-1");
  EXPECT_EQ((*l3)->attempt, 2u);
  auto stats = c->QueueStats("epoch-1");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->acked, 1u);
  EXPECT_EQ(stats->leased, 1u);
  EXPECT_EQ(stats->pending, 1u);
  auto l4 = c->Lease("epoch-1", "w4", std::chrono::seconds(30));
  auto none = c->Lease("epoch-1", "w5", std::chrono::seconds(30));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(PsService, WrongTokenIsRefused) {
  auto server = StartServer();
  PsClientOptions o;
  o.servers = {"127.0.0.1:" + std::to_string(server->port())};
  o.token = "wrong";
  o.connect_attempts = 1;
  auto c = PsClient::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnauthenticated) << c.status().ToString();
}

TEST(PsService, MalformedPayloadClosesOnlyThatConnection) {
  auto server = StartServer();
  net::ClientOptions co;
  co.token = kToken;
  auto raw = net::RpcClient::Connect("127.0.0.1", server->port(), co);
  ASSERT_TRUE(raw.ok());
  std::string junk = "\xff\xff\xff\x7f";  // a string length far beyond the payload
  net::Reply reply;
  Status s = (*raw)->Call(5 /* pull */, net::AsBytes(junk), &reply);
  EXPECT_FALSE(s.ok());
  auto good = Connect({server.get()});
  ASSERT_TRUE(good->CreateTable(SgdTable("still")).ok());
}

TEST(PsService, CheckpointAndRestoreIntoAFreshServer) {
  const std::string store = "mem://ps-ckpt-test";
  std::vector<uint64_t> keys = {1, 2, 3, 4};
  std::vector<float> before(4), after(4);
  {
    auto server = StartServer(store, "unit");
    auto c = Connect({server.get()});
    TableConfig t = SgdTable("m", 0.1f);
    t.optimizer.kind = OptimizerKind::kAdagrad;
    ASSERT_TRUE(c->CreateTable(t).ok());
    ASSERT_TRUE(c->Push("m", keys, std::vector<float>{1, -2, 3, -4}).ok());
    ASSERT_TRUE(c->Put("k", "v").ok());
    ASSERT_TRUE(c->Enqueue("q", std::vector<std::string>{"a", "b"}).ok());
    auto ids = c->Checkpoint();
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    ASSERT_TRUE(c->Pull("m", keys, before).ok());
    // Changes after the checkpoint are not in it.
    ASSERT_TRUE(c->Push("m", keys, std::vector<float>{5, 5, 5, 5}).ok());
  }
  auto server = StartServer(store, "unit", /*restore=*/true);
  auto c = Connect({server.get()});
  uint64_t version = 0;
  ASSERT_TRUE(c->Pull("m", keys, after, &version).ok());
  EXPECT_EQ(before, after);
  EXPECT_EQ(version, 1u);
  std::string v;
  ASSERT_TRUE(c->Get("k", &v).ok());
  EXPECT_EQ(v, "v");
  auto stats = c->QueueStats("q");
  EXPECT_EQ(stats->pending, 2u);
  // Optimizer state came back too: one more Adagrad step matches a server that never stopped.
  ASSERT_TRUE(c->Push("m", keys, std::vector<float>{1, 1, 1, 1}).ok());
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

// Found by fuzz_ps_service: a queue name that is not UTF-8 made the stats
// JSON throw and took the server down.
TEST(PsService, NonUtf8NamesDoNotBreakStats) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  ASSERT_TRUE(c->Enqueue(std::string("q\xff\xfe", 3), std::vector<std::string>{"x"}).ok());
  ASSERT_TRUE(c->Put(std::string("k\xc3", 2), "v").ok());
  auto stats = c->ServerStats(0);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_NE(stats->find("queues"), std::string::npos);
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

TEST(PsService, MultiGetAcrossTwoServers) {
  auto a = StartServer(), b = StartServer();
  auto c = Connect({a.get(), b.get()});
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.push_back("key-" + std::to_string(i));
    if (i % 3) {
      ASSERT_TRUE(c->Put(keys.back(), "v" + std::to_string(i)).ok());
    }
  }
  auto got = c->MultiGet(keys);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  for (int i = 0; i < 20; ++i) {
    if (i % 3) {
      ASSERT_TRUE((*got)[i].has_value()) << i;
      EXPECT_EQ(*(*got)[i], "v" + std::to_string(i));
    } else {
      EXPECT_FALSE((*got)[i].has_value()) << i;
    }
  }
  EXPECT_GT(a->service().kv().size(), 0u);
  EXPECT_GT(b->service().kv().size(), 0u);
}

TEST(PsService, ClientReconnectsAfterServerRestart) {
  ps::PsServerOptions o;
  o.net.token = kToken;
  o.net.port = 0;
  auto first = std::make_unique<ps::PsServer>(o);
  ASSERT_TRUE(first->Start().ok());
  const uint16_t port = first->port();
  auto c = Connect({first.get()});
  ASSERT_TRUE(c->CreateTable(SgdTable("r")).ok());
  first->Stop();
  first.reset();
  o.net.port = port;
  ps::PsServer second(o);
  ASSERT_TRUE(second.Start().ok()) << "port " << port;
  // The first call may fail on the dead connection; the next one reconnects.
  std::vector<uint64_t> keys = {1};
  std::vector<float> out(1);
  Status s = c->CreateTable(SgdTable("r"));
  if (!s.ok()) s = c->CreateTable(SgdTable("r"));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(c->Pull("r", keys, out).ok());
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

TEST(PsService, QueueRenewKeepsALeaseAndDropForgetsTheQueue) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  ASSERT_TRUE(c->Enqueue("r", std::vector<std::string>{"a", "b"}).ok());
  auto l = c->Lease("r", "w", std::chrono::milliseconds(150));
  ASSERT_TRUE(l.ok() && l->has_value());
  ASSERT_TRUE(c->Renew("r", (*l)->lease_id, std::chrono::seconds(30)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(c->QueueStats("r")->expired, 0u);  // without the renew it would have expired
  ASSERT_TRUE(c->Ack("r", (*l)->lease_id).ok());
  EXPECT_TRUE(c->Renew("r", (*l)->lease_id, std::chrono::seconds(1)).IsNotFound());
  EXPECT_TRUE(c->Renew("r", 1, std::chrono::milliseconds(0)).IsInvalidArgument());
  EXPECT_TRUE(c->Renew("no-such-queue", 1, std::chrono::seconds(1)).IsNotFound());

  auto l2 = c->Lease("r", "w", std::chrono::seconds(30));
  ASSERT_TRUE(l2.ok() && l2->has_value());
  ASSERT_TRUE(c->DropQueue("r").ok());
  auto stats = c->QueueStats("r");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->pending + stats->leased + stats->enqueued, 0u);
  EXPECT_TRUE(c->Ack("r", (*l2)->lease_id).IsNotFound());
  EXPECT_TRUE(c->DropQueue("r").ok());  // dropping an absent queue is not an error
}

TEST(PsService, RenewWithZeroTimeoutIsAnErrorReplyNotAClose) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  auto l = (c->Enqueue("z", std::vector<std::string>{"x"}), c->Lease("z", "w", std::chrono::seconds(30)));
  ASSERT_TRUE(l.ok() && l->has_value());
  net::ClientOptions co;
  co.token = kToken;
  auto raw = net::RpcClient::Connect("127.0.0.1", server->port(), co);
  ASSERT_TRUE(raw.ok());
  std::string p;
  net::PayloadWriter w(&p);
  w.Str("z");
  w.U64((*l)->lease_id);
  w.U32(0);
  net::Reply reply;
  EXPECT_TRUE((*raw)->Call(26 /* QUEUE_RENEW */, net::AsBytes(p), &reply).IsInvalidArgument());
  net::PayloadWriter w2(&p);
  w2.Str("z");
  w2.U64((*l)->lease_id);
  w2.U32(1000);
  EXPECT_TRUE((*raw)->Call(26, net::AsBytes(p), &reply).ok());  // the connection stayed open
}

using Rows = std::vector<std::pair<uint64_t, std::vector<float>>>;

// Dump, drop, load, then pull: the same weights, on two servers.
void CheckDumpDropLoad(const TableConfig& t, const std::vector<uint64_t>& keys) {
  auto a = StartServer(), b = StartServer();
  auto c = Connect({a.get(), b.get()});
  ASSERT_TRUE(c->CreateTable(t).ok());
  std::vector<float> g(keys.size() * t.width);
  for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(i % 13) - 6;
  ASSERT_TRUE(c->Push(t.name, keys, g).ok());
  ASSERT_TRUE(c->Push(t.name, keys, g).ok());
  std::vector<float> before(g.size()), after(g.size());
  ASSERT_TRUE(c->Pull(t.name, keys, before).ok());
  Rows dump;
  ASSERT_TRUE(c->DumpTable(t.name, &dump).ok());
  const size_t expect_rows = t.kind == TableKind::kDense ? t.dense_rows : keys.size();
  ASSERT_EQ(dump.size(), expect_rows);  // each key once, whatever the kind
  ASSERT_TRUE(c->DropTable(t.name).ok());
  EXPECT_TRUE(c->Pull(t.name, keys, after).IsNotFound());
  ASSERT_TRUE(c->LoadTable(t, dump).ok());
  uint64_t version = 99;
  ASSERT_TRUE(c->Pull(t.name, keys, after, &version).ok());
  EXPECT_EQ(before, after);
  EXPECT_EQ(version, 0u);
  // Each server got its own keys only.
  if (t.kind == TableKind::kSparse) {
    const auto ra = a->service().FindTable(t.name)->stats().rows;
    const auto rb = b->service().FindTable(t.name)->stats().rows;
    EXPECT_EQ(ra + rb, keys.size());
    EXPECT_GT(ra, 0u);
    EXPECT_GT(rb, 0u);
  }
  Rows again;
  ASSERT_TRUE(c->DumpTable(t.name, &again).ok());
  EXPECT_EQ(again, dump);
  // The loaded table trains on: fresh optimizer state, same rule.
  ASSERT_TRUE(c->Push(t.name, keys, g).ok());
}

TEST(PsService, DumpDropLoadSparseOnTwoServers) {
  TableConfig t = SgdTable("sparse-load", 0.5f, 3);
  t.optimizer.kind = OptimizerKind::kAdagrad;
  t.init = InitKind::kUniform;
  t.init_scale = 0.1f;
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 1000; ++k) keys.push_back(k * 104729 + 5);
  CheckDumpDropLoad(t, keys);
}

TEST(PsService, DumpDropLoadDenseOnTwoServers) {
  TableConfig t = SgdTable("dense-load", 0.5f, 2);
  t.kind = TableKind::kDense;
  t.dense_rows = 300;
  t.init = InitKind::kNormal;
  t.init_scale = 0.01f;
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 300; k += 3) keys.push_back(k);
  CheckDumpDropLoad(t, keys);
}

TEST(PsService, LoadTableRejectsBadRows) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  TableConfig t = SgdTable("bad", 0.5f, 2);
  Rows wrong_width = {{1, {1.0f}}};
  EXPECT_TRUE(c->LoadTable(t, wrong_width).IsInvalidArgument());
  Rows dup = {{1, {1, 2}}, {1, {3, 4}}};
  EXPECT_TRUE(c->LoadTable(t, dup).IsInvalidArgument());
  t.kind = TableKind::kDense;
  t.dense_rows = 4;
  Rows out_of_range = {{4, {1, 2}}};
  EXPECT_TRUE(c->LoadTable(t, out_of_range).IsInvalidArgument());
  EXPECT_EQ(server->service().FindTable("bad"), nullptr);
  // An empty load creates an empty table.
  ASSERT_TRUE(c->LoadTable(SgdTable("empty"), Rows{}).ok());
  EXPECT_NE(server->service().FindTable("empty"), nullptr);
}

// Millions of keys in one call are cut into requests under the protocol
// caps and pipelined; the caller sees one pull / push.
void CheckHugePullPush(std::vector<ps::PsServer*> servers, size_t n, uint32_t width) {
  auto c = Connect(servers);
  ASSERT_TRUE(c->CreateTable(SgdTable("huge", 1.0f, width)).ok());
  std::vector<uint64_t> keys(n);
  std::vector<float> g(n * width);
  for (size_t i = 0; i < n; ++i) {
    keys[i] = i * 2654435761ull + 1;
    for (uint32_t j = 0; j < width; ++j) g[i * width + j] = static_cast<float>((i + j) % 17);
  }
  ASSERT_TRUE(c->Push("huge", keys, g).ok());
  std::vector<float> out(n * width, 1.0f);
  ASSERT_TRUE(c->Pull("huge", keys, out).ok());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], -g[i]) << "float " << i;
  uint64_t pulls = 0, rows = 0;
  for (auto* s : servers) {
    pulls += s->service().FindTable("huge")->stats().pulls;
    rows += s->service().FindTable("huge")->stats().rows;
  }
  EXPECT_EQ(rows, n);
  EXPECT_GT(pulls, servers.size());  // it took several requests per server
  const size_t request_bytes = n * (8 + 4 * width) / servers.size();
  EXPECT_GT(request_bytes, PsClient::kMaxRequestBytes);
}

TEST(PsService, PullAndPushOfTwoMillionKeys) {
  auto server = StartServer();
  CheckHugePullPush({server.get()}, 2'000'000, 1);
}

TEST(PsService, PullAndPushOfManyWideKeysOnTwoServers) {
  auto a = StartServer(), b = StartServer();
  CheckHugePullPush({a.get(), b.get()}, 300'000, 16);
}

// A push may be started while a pull is in flight; with several servers the
// pull's scatter positions must survive the push's key split.
TEST(PsService, PushWhilePullInFlightOnTwoServers) {
  auto a = StartServer(), b = StartServer();
  auto c = Connect({a.get(), b.get()});
  ASSERT_TRUE(c->CreateTable(SgdTable("ip", 1.0f)).ok());
  std::vector<uint64_t> pull_keys, push_keys;
  for (uint64_t k = 0; k < 64; ++k) pull_keys.push_back(k);
  for (uint64_t k = 1000; k < 1010; ++k) push_keys.push_back(k);
  ASSERT_TRUE(c->Push("ip", pull_keys, std::vector<float>(64, 0)).ok());
  std::vector<float> g(64);
  for (size_t i = 0; i < 64; ++i) g[i] = static_cast<float>(i);
  ASSERT_TRUE(c->Push("ip", pull_keys, g).ok());
  std::vector<float> out(64);
  ASSERT_TRUE(c->StartPull("ip", pull_keys, out).ok());
  ASSERT_TRUE(c->StartPush("ip", push_keys, std::vector<float>(10, 1)).ok());
  ASSERT_TRUE(c->FinishPull().ok());
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(out[i], -static_cast<float>(i)) << i;
  EXPECT_TRUE(c->Flush().ok());
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

TEST(PsService, APausedGateHoldsRequestsUntilResumed) {
  auto server = StartServer();
  auto c = Connect({server.get()});
  ASSERT_TRUE(c->Put("k", "0").ok());
  std::atomic<bool> done{false};
  server->service().gate().Pause();
  std::thread writer([&] {
    auto w = Connect({server.get()});
    EXPECT_TRUE(w->Put("k", "1").ok());
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_FALSE(done.load());  // held at the gate (with it, the I/O thread: pauses are short)
  server->service().gate().Resume();
  writer.join();
  EXPECT_TRUE(done.load());
  std::string v;
  ASSERT_TRUE(c->Get("k", &v).ok());
  EXPECT_EQ(v, "1");
}

TEST(PsService, CheckpointsAreOneCutOfKvAndQueues) {
  // Workers count an item in a KV vector, then ack it, while checkpoints are
  // taken: in every checkpoint an acked item is counted (the count precedes
  // the ack), and items pending there are exactly the ones not acked.
  const std::string store = "mem://ps-cut-test";
  auto server = StartServer(store, "cut");
  auto c = Connect({server.get()});
  constexpr uint32_t kItems = 4000;
  std::vector<std::string> items;
  for (uint32_t i = 0; i < kItems; ++i) items.push_back(std::to_string(i));
  ASSERT_TRUE(c->Enqueue("q", items).ok());
  ASSERT_TRUE(c->AddFloats("acks", std::vector<float>(kItems, 0.0f)).ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      auto wc = Connect({server.get()});
      std::vector<float> one(kItems, 0.0f);
      while (!stop) {
        auto lease = wc->Lease("q", "w" + std::to_string(w), std::chrono::milliseconds(60000));
        if (!lease.ok() || !lease->has_value()) break;
        const uint32_t i = static_cast<uint32_t>(std::stoul((*lease)->payload));
        one[i] = 1;
        EXPECT_TRUE(wc->AddFloats("acks", one).ok());
        one[i] = 0;
        EXPECT_TRUE(wc->Ack("q", (*lease)->lease_id).ok());
      }
    });
  }
  int checked = 0;
  for (int k = 0; k < 12; ++k) {
    ASSERT_TRUE(server->Checkpoint().ok());
    auto restored = StartServer(store, "cut", /*restore=*/true);
    auto rc = Connect({restored.get()});
    std::vector<float> acks;
    ASSERT_TRUE(rc->AddFloats("acks", std::vector<float>(kItems, 0.0f), &acks).ok());
    auto q = rc->QueueStats("q");
    ASSERT_TRUE(q.ok());
    uint64_t counted = 0;
    for (float a : acks) counted += a >= 1;
    EXPECT_GE(counted, q->acked) << "checkpoint " << k;
    EXPECT_EQ(q->leased, 0u);  // leases at the cut are pending after a restore
    EXPECT_EQ(q->pending + q->acked, kItems);
    ++checked;
  }
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(checked, 12);
  auto stats = nlohmann::json::parse(*c->ServerStats(0));
  EXPECT_EQ(stats["checkpoints"]["written"], 12);
  EXPECT_EQ(stats["checkpoints"]["failed"], 0);
}

TEST(PsService, PeriodicCheckpointsBelowASecond) {
  // checkpoint_every is milliseconds: 100 ms gives several checkpoints in
  // 0.8 s (rounded to whole seconds it gave none).
  ps::PsServerOptions o;
  o.net.token = kToken;
  o.net.spin = std::chrono::microseconds(0);
  o.checkpoint_uri = "mem://ps-ckpt-every";
  o.name = "e";
  o.checkpoint_every = std::chrono::milliseconds(100);
  ps::PsServer server(o);
  ASSERT_TRUE(server.Start().ok());
  auto c = Connect({&server});
  ASSERT_TRUE(c->Put("k", "v").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  auto stats = nlohmann::json::parse(*c->ServerStats(0));
  EXPECT_GE(stats["checkpoints"]["written"].get<int>(), 3) << stats["checkpoints"];
}

TEST(PsService, AFailedCheckpointIsInTheStats) {
  const std::string dir = ::testing::TempDir() + "/ps-ckpt-fail-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/checkpoints") << "a file where a directory must go";
  auto server = StartServer("file://" + dir, "f");
  auto c = Connect({server.get()});
  ASSERT_TRUE(c->Put("k", "v").ok());
  EXPECT_FALSE(c->Checkpoint().ok());
  auto stats = nlohmann::json::parse(*c->ServerStats(0));
  EXPECT_EQ(stats["checkpoints"]["failed"], 1);
  EXPECT_EQ(stats["checkpoints"]["written"], 0);
  EXPECT_NE(stats["checkpoints"]["last_error"].get<std::string>(), "");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

TEST(PackedKeys, RoundTripAnyKeysInAnyOrder) {
  std::vector<uint64_t> keys = {0, 1, 0, UINT64_MAX, 5, 1ull << 63, 300, 299, UINT64_MAX - 1, 7};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) keys.push_back(rng() >> (rng() % 64));
  std::string buf;
  net::PayloadWriter w(&buf);
  ps::EncodePackedKeys(keys, &w);
  EXPECT_LT(buf.size(), keys.size() * 8) << "smaller than the u64 array";
  net::PayloadReader r(net::AsBytes(buf));
  std::vector<uint64_t> out = {42};
  ASSERT_TRUE(ps::DecodePackedKeys(&r, &out, 1u << 20).ok());
  EXPECT_EQ(out, keys);
  EXPECT_TRUE(r.ExpectEnd().ok());
  // Hashed feature ids (< 2^24) in a worker's order: about 3 bytes each.
  std::vector<uint64_t> hashed;
  for (int i = 0; i < 10000; ++i) hashed.push_back(rng() % (1u << 24));
  net::PayloadWriter w2(&buf);
  ps::EncodePackedKeys(hashed, &w2);
  EXPECT_LT(buf.size(), hashed.size() * 4);
}

TEST(PackedKeys, DamagedInputIsAnErrorNamingWhat) {
  const std::vector<uint64_t> keys = {1, 1000, 1ull << 40};
  std::string good;
  net::PayloadWriter w(&good);
  ps::EncodePackedKeys(keys, &w);
  std::vector<uint64_t> out;
  {  // over the caller's limit
    net::PayloadReader r(net::AsBytes(good));
    Status s = ps::DecodePackedKeys(&r, &out, 2);
    EXPECT_TRUE(s.IsInvalidArgument());
    EXPECT_NE(s.message().find("exceeds the limit 2"), std::string::npos) << s.ToString();
  }
  {  // a varint cut short: the count says 3 keys, the bytes end inside the last
    std::string bad = good;
    uint32_t len = 0;
    std::memcpy(&len, bad.data() + 4, 4);
    --len;
    std::memcpy(bad.data() + 4, &len, 4);
    bad.pop_back();
    net::PayloadReader r(net::AsBytes(bad));
    Status s = ps::DecodePackedKeys(&r, &out, 100);
    EXPECT_NE(s.message().find("key 2 of 3 is truncated"), std::string::npos) << s.ToString();
  }
  {  // a stray byte after the last key
    std::string bad = good;
    uint32_t len = 0;
    std::memcpy(&len, bad.data() + 4, 4);
    ++len;
    std::memcpy(bad.data() + 4, &len, 4);
    bad.push_back('\x01');
    net::PayloadReader r(net::AsBytes(bad));
    Status s = ps::DecodePackedKeys(&r, &out, 100);
    EXPECT_NE(s.message().find("unexpected bytes"), std::string::npos) << s.ToString();
  }
  {  // an 11-byte varint
    std::string bad;
    net::PayloadWriter bw(&bad);
    bw.U32(1);
    bw.Str(std::string(10, '\xff') + '\x01');
    net::PayloadReader r(net::AsBytes(bad));
    EXPECT_TRUE(ps::DecodePackedKeys(&r, &out, 100).IsInvalidArgument());
  }
}

TEST(PsService, StatePullsAndDeltasOnTwoServersAgreeWithOne) {
  auto s1 = StartServer();
  auto s2 = StartServer();
  auto s3 = StartServer();
  auto one = Connect({s1.get()});
  auto two = Connect({s2.get(), s3.get()});
  ASSERT_TRUE(one && two);
  TableConfig t;
  t.name = "f";
  t.width = 2;
  t.optimizer.kind = OptimizerKind::kFtrl;
  ASSERT_TRUE(one->CreateTable(t).ok());
  ASSERT_TRUE(two->CreateTable(t).ok());
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 5000; ++k) keys.push_back(k * 7919 % 100003);
  const size_t rf = 4;  // (z, n) per coordinate
  std::vector<float> delta(keys.size() * rf);
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = (i % rf) % 2 ? 0.25f : 0.01f * float(i % 97) - 0.4f;
  for (PsClient* c : {one.get(), two.get()}) {
    ASSERT_TRUE(c->StartPushDelta("f", keys, delta, 64).ok());
    ASSERT_TRUE(c->Flush().ok());
  }
  std::vector<float> a(keys.size() * rf), b(keys.size() * rf), wa(keys.size() * 2), wb(wa.size());
  uint64_t va = 0, vb = 0;
  ASSERT_TRUE(one->StartPullState("f", keys, a).ok());
  ASSERT_TRUE(one->FinishPull(&va).ok());
  ASSERT_TRUE(two->StartPullState("f", keys, b).ok());
  ASSERT_TRUE(two->FinishPull(&vb).ok());
  EXPECT_EQ(a, delta);
  EXPECT_EQ(b, delta);
  EXPECT_EQ(va, 64u);
  EXPECT_EQ(vb, 64u) << "each server counted the delta's 64 steps";
  ASSERT_TRUE(one->Pull("f", keys, wa).ok());
  ASSERT_TRUE(two->Pull("f", keys, wb).ok());
  EXPECT_EQ(wa, wb);
  size_t nonzero = 0;
  for (float w : wa) nonzero += w != 0.0f;
  EXPECT_GT(nonzero, wa.size() / 2) << "weights settled from (z, n)";
  // Wrong sizes and zero steps: error replies, the connection stays.
  std::vector<float> short_out(3);
  EXPECT_TRUE(one->StartPullState("f", keys, short_out).IsInvalidArgument());
  EXPECT_TRUE(one->StartPushDelta("f", keys, delta, 0).IsInvalidArgument());
  ASSERT_TRUE(one->StartPushDelta("nope", keys, delta, 1).ok());
  EXPECT_TRUE(one->Flush().IsNotFound());
  ASSERT_TRUE(one->StartPullState("f", keys, a).ok());
  EXPECT_TRUE(one->FinishPull().ok());
}

}  // namespace
}  // namespace virga
