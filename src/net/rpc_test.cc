#include "net/rpc.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <asio.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace virga::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint8_t kOpEcho = 1, kOpSlow = 2, kOpClose = 3, kOpFail = 4;
constexpr char kToken[] = "s3cret-token";

HandlerAction TestHandler(const RequestContext&, const FrameHeader& req,
                          std::span<const std::byte> payload, Status* status, std::string* reply) {
  switch (req.opcode) {
    case kOpSlow:
      std::this_thread::sleep_for(500ms);
      [[fallthrough]];
    case kOpEcho:
      reply->assign(reinterpret_cast<const char*>(payload.data()), payload.size());
      return HandlerAction::kReply;
    case kOpFail:
      *status = Status::NotFound("no such key 42");
      return HandlerAction::kReply;
    default:
      *status = Status::InvalidArgument("malformed request");
      return HandlerAction::kCloseConnection;
  }
}

std::string_view View(std::span<const std::byte> p) {
  return {reinterpret_cast<const char*>(p.data()), p.size()};
}

std::string FrameBytes(uint8_t opcode, uint64_t id, std::string_view payload,
                       uint32_t claimed_len) {
  std::string out(kHeaderSize, '\0');
  EncodeHeader(FrameHeader{.opcode = opcode, .request_id = id, .payload_len = claimed_len},
               reinterpret_cast<std::byte*>(out.data()));
  return out += payload;
}

std::string HelloBytes(std::string_view token) {
  std::string p;
  PayloadWriter(&p).Str(token);
  return FrameBytes(kOpHello, 0, p, static_cast<uint32_t>(p.size()));
}

// A hand-driven peer for misbehaving on purpose (plain POSIX calls on an Asio socket).
class RawPeer {
 public:
  explicit RawPeer(uint16_t port) {
    socket_.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  void HalfClose() { socket_.shutdown(asio::ip::tcp::socket::shutdown_send); }
  // True if the server closes the connection within `timeout`; bytes read go to *got.
  bool WaitClosed(std::chrono::milliseconds timeout, std::string* got = nullptr) {
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (Clock::now() < deadline) {
      pollfd pfd{socket_.native_handle(), POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      const ssize_t n = ::recv(socket_.native_handle(), buf, sizeof(buf), 0);
      if (n <= 0) return true;  // EOF or reset
      if (got) got->append(buf, static_cast<size_t>(n));
    }
    return false;
  }

 private:
  asio::io_context ioc_;
  asio::ip::tcp::socket socket_{ioc_};
};

class RpcTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions o = {}) {
    o.token = kToken;
    server_ = std::make_unique<RpcServer>(o, TestHandler);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::unique_ptr<RpcClient> NewClient(ClientOptions o = {}) {
    o.token = kToken;
    auto c = RpcClient::Connect("127.0.0.1", server_->port(), o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static void ExpectEcho(RpcClient* c, const std::string& msg) {
    Reply r;
    Status s = c->Call(kOpEcho, AsBytes(msg), &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(View(r.payload), msg);
  }
  // Runs `misbehave` on a raw connection, checks the server closes it, and
  // that a client connected beforehand is still served.
  void ExpectOnlyThatConnectionCloses(const std::function<void(RawPeer&)>& misbehave,
                                      std::chrono::milliseconds within = 5s) {
    auto good = NewClient();
    ASSERT_TRUE(good);
    ExpectEcho(good.get(), "before");
    const uint64_t rejected = server_->counters().connections_rejected;
    RawPeer bad(server_->port());
    misbehave(bad);
    EXPECT_TRUE(bad.WaitClosed(within));
    for (int i = 0; i < 100 && server_->counters().connections_rejected == rejected; ++i)
      std::this_thread::sleep_for(10ms);
    EXPECT_EQ(server_->counters().connections_rejected, rejected + 1);
    ExpectEcho(good.get(), "after");
  }

  std::unique_ptr<RpcServer> server_;
};

TEST_F(RpcTest, EchoAndErrorReplies) {
  StartServer();
  auto c = NewClient();
  ASSERT_TRUE(c);
  ExpectEcho(c.get(), "hello");
  ExpectEcho(c.get(), "");
  Reply r;
  Status s = c->Call(kOpFail, {}, &r);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_EQ(s.message(), "no such key 42");
  EXPECT_EQ(r.status.code(), Status::Code::kNotFound);
  ExpectEcho(c.get(), "still usable");
  EXPECT_EQ(c->Send(kOpHello, {}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(c->Wait(99, &r).code(), Status::Code::kInvalidArgument);  // nothing outstanding
}

TEST_F(RpcTest, PipelinedRequestsAnsweredInOrder) {
  ServerOptions o;
  o.max_queued_reply_bytes = 4096;  // forces back-pressure with many queued replies
  StartServer(o);
  auto c = NewClient();
  ASSERT_TRUE(c);
  std::vector<std::string> sent;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    sent.push_back(std::string(static_cast<size_t>(i) * 61, static_cast<char>('a' + i % 26)));
    auto id = c->Send(kOpEcho, AsBytes(sent.back()));
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  EXPECT_EQ(c->outstanding(), 100u);
  for (int i = 0; i < 100; ++i) {
    Reply r;
    ASSERT_TRUE(c->Wait(ids[i], &r).ok()) << i;
    EXPECT_EQ(r.header.request_id, ids[i]);
    EXPECT_EQ(View(r.payload), sent[i]) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.payload.data()) % 8, 0u);
  }
  EXPECT_GE(server_->counters().frames, 101u);  // + HELLO
}

// Held requests go out with the next Send, or before a Wait; either way
// every reply comes back in order. Big ones (megabytes held at once) force
// partial writes across the held buffer and the new frame.
TEST_F(RpcTest, HeldRequestsGoOutWithTheNextSendOrWait) {
  StartServer();
  auto c = NewClient();
  ASSERT_TRUE(c);
  for (size_t size : {size_t{0}, size_t{100}, size_t{3} << 20}) {
    SCOPED_TRACE(size);
    std::vector<std::string> sent;
    std::vector<uint64_t> ids;
    for (int i = 0; i < 6; ++i) {
      sent.push_back(std::string(size + static_cast<size_t>(i), static_cast<char>('a' + i)));
      // Held, held, sent (carrying both), held, sent, held (flushed by Wait).
      const bool hold = i == 0 || i == 1 || i == 3 || i == 5;
      std::string buf = sent.back();
      auto id = hold ? c->Hold(kOpEcho, AsBytes(buf)) : c->Send(kOpEcho, AsBytes(buf));
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      ids.push_back(*id);
      std::fill(buf.begin(), buf.end(), '!');  // the payload may be reused once Hold/Send returns
    }
    EXPECT_EQ(c->outstanding(), 6u);
    for (int i = 0; i < 6; ++i) {
      Reply r;
      ASSERT_TRUE(c->Wait(ids[i], &r).ok()) << i;
      EXPECT_EQ(r.header.request_id, ids[i]);
      EXPECT_EQ(View(r.payload), sent[i]) << i;
    }
  }
  // A lone held request is written by the Wait for it.
  auto id = c->Hold(kOpEcho, AsBytes(std::string("alone")));
  ASSERT_TRUE(id.ok());
  Reply r;
  ASSERT_TRUE(c->Wait(*id, &r).ok());
  EXPECT_EQ(View(r.payload), "alone");
  EXPECT_EQ(c->Hold(kOpHello, {}).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(RpcTest, WrongTokenIsUnauthenticated) {
  StartServer();
  ClientOptions o;
  o.token = "guess";
  o.connect_attempts = 3;
  const auto start = Clock::now();
  auto c = RpcClient::Connect("127.0.0.1", server_->port(), o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnauthenticated) << c.status().ToString();
  EXPECT_NE(c.status().message().find("127.0.0.1:" + std::to_string(server_->port())),
            std::string::npos);
  EXPECT_LT(Clock::now() - start, 40ms);  // not retried
}

TEST_F(RpcTest, WrongTokenOnRawConnectionIsAnsweredThenClosed) {
  StartServer();
  RawPeer peer(server_->port());
  peer.Send(HelloBytes("guess"));
  std::string got;
  EXPECT_TRUE(peer.WaitClosed(5s, &got));
  ASSERT_GE(got.size(), kHeaderSize);
  FrameHeader h;
  ASSERT_TRUE(DecodeHeader(reinterpret_cast<const std::byte*>(got.data()), 1024, &h).ok());
  EXPECT_EQ(h.status, static_cast<uint32_t>(Status::Code::kUnauthenticated));
  EXPECT_TRUE(h.flags & kFlagReply);
}

TEST_F(RpcTest, RequestBeforeHelloClosesThatConnection) {
  StartServer();
  ExpectOnlyThatConnectionCloses([](RawPeer& p) { p.Send(FrameBytes(kOpEcho, 1, "x", 1)); });
}

TEST_F(RpcTest, GarbageClosesThatConnection) {
  StartServer();
  ExpectOnlyThatConnectionCloses([](RawPeer& p) { p.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); });
  ExpectOnlyThatConnectionCloses([](RawPeer& p) {  // after a good HELLO
    p.Send(HelloBytes(kToken));
    p.Send(std::string(64, '\x7f'));
  });
}

TEST_F(RpcTest, HugePayloadLenClosesThatConnection) {
  ServerOptions o;
  o.max_payload = 1 << 20;
  StartServer(o);
  ExpectOnlyThatConnectionCloses([](RawPeer& p) {
    p.Send(HelloBytes(kToken));
    p.Send(FrameBytes(kOpEcho, 1, "", 0xfffffff0u));
  });
}

TEST_F(RpcTest, HalfAFrameThenCloseIsLoggedAsAFault) {
  StartServer();
  ExpectOnlyThatConnectionCloses([](RawPeer& p) {
    p.Send(HelloBytes(kToken));
    p.Send(FrameBytes(kOpEcho, 1, "abc", 10));  // promises 10 bytes, sends 3
    p.HalfClose();
  });
}

TEST_F(RpcTest, SilenceAfterPartialHelloHitsTheAuthTimeout) {
  ServerOptions o;
  o.auth_timeout = 300ms;
  StartServer(o);
  const auto start = Clock::now();
  ExpectOnlyThatConnectionCloses(
      [](RawPeer& p) { p.Send(HelloBytes(kToken).substr(0, kHeaderSize)); }, 3s);
  EXPECT_GE(Clock::now() - start, 250ms);
}

// A peer that connects and sends nothing at all: no HELLO, no bytes.
TEST_F(RpcTest, SilentConnectionIsClosedAfterTheAuthTimeout) {
  ServerOptions o;
  o.auth_timeout = 300ms;
  StartServer(o);
  const auto start = Clock::now();
  ExpectOnlyThatConnectionCloses([](RawPeer&) {}, 3s);
  EXPECT_GE(Clock::now() - start, 250ms);
  EXPECT_LT(Clock::now() - start, 3s);
}

// Authenticated connections are not subject to the auth timeout.
TEST_F(RpcTest, AuthenticatedConnectionOutlivesTheAuthTimeout) {
  ServerOptions o;
  o.auth_timeout = 100ms;
  StartServer(o);
  auto c = NewClient();
  ASSERT_TRUE(c);
  std::this_thread::sleep_for(300ms);
  ExpectEcho(c.get(), "still here");
  EXPECT_EQ(server_->counters().connections_rejected, 0u);
}

TEST(ServerOptionsDefaults, AuthTimeoutIsAFewSeconds) {
  EXPECT_LE(ServerOptions{}.auth_timeout, 5s);
}

TEST_F(RpcTest, HandlerCloseFlushesEarlierRepliesThenCloses) {
  StartServer();
  auto c = NewClient();
  ASSERT_TRUE(c);
  auto first = c->Send(kOpEcho, AsBytes(std::string_view("first")));
  auto bad = c->Send(kOpClose, {});
  ASSERT_TRUE(first.ok() && bad.ok());
  Reply r;
  ASSERT_TRUE(c->Wait(*first, &r).ok());
  EXPECT_EQ(View(r.payload), "first");
  Status s = c->Wait(*bad, &r);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_EQ(c->Call(kOpEcho, {}, &r).code(), Status::Code::kUnavailable);  // broken until...
  ASSERT_TRUE(c->Reconnect().ok());
  ExpectEcho(c.get(), "again");
}

TEST_F(RpcTest, ConcurrentClients) {
  ServerOptions o;
  o.threads = 2;
  StartServer(o);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto c = NewClient();
      if (!c) return failures.fetch_add(1000), void();
      Reply r;
      for (int i = 0; i < 1000; ++i) {
        const std::string msg = std::to_string(t) + ":" + std::to_string(i);
        if (!c->Call(kOpEcho, AsBytes(msg), &r).ok() || View(r.payload) != msg) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const ServerCounters k = server_->counters();
  EXPECT_EQ(k.connections_accepted, 4u);
  EXPECT_GE(k.frames, 4004u);
}

TEST_F(RpcTest, SlowHandlerHitsTheCallTimeout) {
  StartServer();
  ClientOptions co;
  co.call_timeout = 100ms;
  auto c = NewClient(co);
  ASSERT_TRUE(c);
  Reply r;
  const auto start = Clock::now();
  Status s = c->Call(kOpSlow, {}, &r);
  EXPECT_EQ(s.code(), Status::Code::kDeadlineExceeded) << s.ToString();
  EXPECT_NE(s.message().find("no reply to request"), std::string::npos) << s.ToString();
  EXPECT_LT(Clock::now() - start, 400ms);
  EXPECT_EQ(c->Call(kOpEcho, {}, &r).code(), Status::Code::kUnavailable);
  ASSERT_TRUE(c->Reconnect().ok());
  ExpectEcho(c.get(), "recovered");
}

TEST_F(RpcTest, UnreachableServerIsUnavailableNamingTheAddress) {
  StartServer();
  const uint16_t port = server_->port();
  server_->Stop();
  ClientOptions o;
  o.token = kToken;
  o.connect_attempts = 2;
  auto c = RpcClient::Connect("127.0.0.1", port, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(c.status().message().find("127.0.0.1:" + std::to_string(port) +
                                      ": unreachable after 2 attempt(s)"),
            std::string::npos)
      << c.status().ToString();
}

TEST_F(RpcTest, StopClosesClientsAndCountsSpinHits) {
  ServerOptions o;
  o.spin = 200ms;  // generous: the next request always arrives within it
  o.spin_yield_limit = 0us;  // keep spinning on a loaded machine too
  StartServer(o);
  auto c = NewClient();
  ASSERT_TRUE(c);
  for (int i = 0; i < 20; ++i) {
    // The pause lets the server drain its work and start spinning before the
    // next request (a request already waiting when it finishes is no hit).
    std::this_thread::sleep_for(2ms);
    ExpectEcho(c.get(), "ping");
  }
  EXPECT_GE(server_->counters().spin_hits, 10u);
  EXPECT_EQ(server_->counters().connections_open, 1u);
  server_->Stop();
  EXPECT_EQ(server_->counters().connections_open, 0u);
  Reply r;
  EXPECT_EQ(c->Call(kOpEcho, {}, &r).code(), Status::Code::kUnavailable);
}

TEST(RpcServerStart, RefusesAnEmptyToken) {
  RpcServer server(ServerOptions{}, TestHandler);
  EXPECT_TRUE(server.Start().IsInvalidArgument());
}

}  // namespace
}  // namespace virga::net

namespace virga::net {
namespace {

TEST_F(RpcTest, ConnectionsPerPeerAreCapped) {
  ServerOptions o;
  o.max_connections_per_peer = 2;
  StartServer(o);
  auto a = std::make_unique<RawPeer>(server_->port());
  auto b = NewClient();  // an authenticated one counts too
  ASSERT_TRUE(b);
  ExpectEcho(b.get(), "held");
  RawPeer c(server_->port());
  EXPECT_TRUE(c.WaitClosed(2s));  // the third from this address is closed at accept
  a.reset();                      // a slot comes free once the server sees the close
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) {
    ClientOptions co;
    co.token = kToken;
    auto d = RpcClient::Connect("127.0.0.1", server_->port(), co);
    Reply r;
    served = d.ok() && (*d)->Call(kOpEcho, AsBytes(std::string("again")), &r).ok();
    if (!served) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(served);
  ExpectEcho(b.get(), "still");
}

}  // namespace
}  // namespace virga::net

namespace virga::net {
namespace {

// TLS: certificates made by the openssl CLI in a temporary directory.
class RpcTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/virga-rpc-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    const std::string d = *dir_;
    const std::string quiet = " >/dev/null 2>&1";
    auto self_signed = [&](const std::string& name, const std::string& san) {
      return std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + name +
                          " -addext subjectAltName=" + san + " -keyout " + d + "/" + name +
                          ".key -out " + d + "/" + name + ".pem" + quiet).c_str());
    };
    ASSERT_EQ(self_signed("server", "IP:127.0.0.1"), 0) << "openssl CLI";
    ASSERT_EQ(self_signed("other", "IP:127.0.0.1"), 0);
    ASSERT_EQ(self_signed("elsewhere", "IP:10.9.8.7"), 0);
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf " + *dir_).c_str());
    delete dir_;
  }
  static std::string Pem(const std::string& name) {
    FILE* f = std::fopen((*dir_ + "/" + name + ".pem").c_str(), "rb");
    std::string out;
    char buf[4096];
    for (size_t n; f != nullptr && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    if (f != nullptr) std::fclose(f);
    return out;
  }
  static ServerOptions Tls(const std::string& name) {
    ServerOptions o;
    o.token = kToken;
    o.tls_cert_file = *dir_ + "/" + name + ".pem";
    o.tls_key_file = *dir_ + "/" + name + ".key";
    return o;
  }
  static ClientOptions Client(const std::string& ca) {
    ClientOptions c;
    c.token = kToken;
    c.tls_ca_pem = ca.empty() ? "" : Pem(ca);
    c.connect_attempts = 1;
    return c;
  }
  static std::string* dir_;
};
std::string* RpcTlsTest::dir_ = nullptr;

TEST_F(RpcTlsTest, RequestsOverTlsWithAVerifiedServer) {
  RpcServer server(Tls("server"), TestHandler);
  ASSERT_TRUE(server.Start().ok());
  auto c = RpcClient::Connect("127.0.0.1", server.port(), Client("server"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // Pipelined, small and large (several TLS records).
  const std::string big(3 << 20, 'x');
  for (int round = 0; round < 3; ++round) {
    auto a = (*c)->Send(kOpEcho, AsBytes(std::string_view("hello")));
    auto b = (*c)->Send(kOpEcho, AsBytes(big));
    ASSERT_TRUE(a.ok() && b.ok());
    Reply r;
    ASSERT_TRUE((*c)->Wait(*a, &r).ok());
    EXPECT_EQ(View(r.payload), "hello");
    ASSERT_TRUE((*c)->Wait(*b, &r).ok());
    EXPECT_EQ(r.payload.size(), big.size());
  }
  Reply r;
  EXPECT_TRUE((*c)->Call(kOpFail, {}, &r).IsNotFound());
  ASSERT_TRUE((*c)->Reconnect().ok());  // a new handshake
  EXPECT_TRUE((*c)->Call(kOpEcho, AsBytes(std::string_view("again")), &r).ok());
}

TEST_F(RpcTlsTest, WrongCaWrongAddressAndPlainClientsFailClearly) {
  RpcServer server(Tls("server"), TestHandler);
  ASSERT_TRUE(server.Start().ok());
  const std::string addr = "127.0.0.1:" + std::to_string(server.port());
  auto wrong_ca = RpcClient::Connect("127.0.0.1", server.port(), Client("other"));
  ASSERT_FALSE(wrong_ca.ok());
  EXPECT_EQ(wrong_ca.status().code(), Status::Code::kUnauthenticated) << wrong_ca.status().ToString();
  EXPECT_NE(wrong_ca.status().message().find(addr + ": TLS: the server's certificate failed "
                                                    "verification"),
            std::string::npos)
      << wrong_ca.status().ToString();
  // Plain TCP against TLS: no connection (and no hang).
  auto plain = RpcClient::Connect("127.0.0.1", server.port(), Client(""));
  EXPECT_FALSE(plain.ok());

  RpcServer other(Tls("elsewhere"), TestHandler);  // a certificate for 10.9.8.7
  ASSERT_TRUE(other.Start().ok());
  auto wrong_ip = RpcClient::Connect("127.0.0.1", other.port(), Client("elsewhere"));
  ASSERT_FALSE(wrong_ip.ok());
  EXPECT_NE(wrong_ip.status().message().find("failed verification"), std::string::npos)
      << wrong_ip.status().ToString();
  // A TLS client of a plain server: Unavailable (retried like a refused connection).
  ServerOptions po;
  po.token = kToken;
  RpcServer plain_server(po, TestHandler);
  ASSERT_TRUE(plain_server.Start().ok());
  auto tls_to_plain = RpcClient::Connect("127.0.0.1", plain_server.port(), Client("server"));
  ASSERT_FALSE(tls_to_plain.ok());
  EXPECT_NE(tls_to_plain.status().message().find("does the server use TLS?"), std::string::npos)
      << tls_to_plain.status().ToString();
  // A key that does not match its certificate is refused at Start.
  ServerOptions bad = Tls("server");
  bad.tls_key_file = *dir_ + "/other.key";
  RpcServer mismatched(bad, TestHandler);
  EXPECT_TRUE(mismatched.Start().IsInvalidArgument());
}

}  // namespace
}  // namespace virga::net
