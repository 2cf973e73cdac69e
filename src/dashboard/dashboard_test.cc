// The dashboard over real HTTP on loopback: auth, the API, kills, limits.
#include "virga/dashboard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <filesystem>

#include <gtest/gtest.h>
#include <httplib.h>

#include "dashboard/header_gate.h"
#include "dashboard/test_util.h"

namespace virga {
namespace {

using dash::testing::FakeStatus;
using dash::testing::TempDir;
using dash::testing::WriteStatus;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    WriteStatus(dir_.path(), FakeStatus("run-1", "running", getpid(), 5, 0.6));
    WriteStatus(dir_.path(), FakeStatus("run-2", "running", getpid(), 5, 0.5));
    WriteStatus(dir_.path(), FakeStatus("old-1", "done", getpid(), 5, 0.4));
    WriteStatus(dir_.path(), FakeStatus("gone-1", "running", 0, 5, 0.4));  // process gone
    DashboardOptions o;
    o.registry_dir = dir_.path();
    o.token = kToken;
    o.max_body_bytes = 1024;
    auto d = Dashboard::Start(o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dash_ = std::move(*d);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", dash_->port());
  }

  httplib::Headers Auth() const { return {{"Authorization", std::string("Bearer ") + kToken}}; }
  nlohmann::json GetJson(const std::string& path) {
    auto r = client_->Get(path.c_str(), Auth());
    EXPECT_TRUE(r) << path;
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  bool KillFile(const std::string& job) const {
    return std::filesystem::exists(dir_.path() + "/" + job + "/kill");
  }

  TempDir dir_;
  std::unique_ptr<Dashboard> dash_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(DashboardTest, EveryRouteNeedsTheToken) {
  for (const char* path : {"/", "/app.js", "/style.css", "/api/jobs", "/api/jobs/run-1", "/metrics",
                           "/api/info", "/nope"}) {
    auto r = client_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
    EXPECT_NE(r->body.find("unauthorized"), std::string::npos);
    EXPECT_EQ(r->body.find("run-1\""), std::string::npos) << "leaked data on 401: " << path;
    r = client_->Get(path, {{"Authorization", "Bearer wrong"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }
  auto r = client_->Post("/api/jobs/run-1/kill", "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = client_->Post("/api/kill-all", {{"X-Virga-Token", "nope"}}, "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_FALSE(KillFile("run-1"));
  EXPECT_FALSE(KillFile("run-2"));
}

TEST_F(DashboardTest, PrintedUrlSetsACookieThePageThenUses) {
  EXPECT_EQ(dash_->url(), "http://127.0.0.1:" + std::to_string(dash_->port()) + "/?token=" + kToken);
  auto r = client_->Get((std::string("/?token=") + kToken).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 303);
  EXPECT_EQ(r->get_header_value("Location"), "/");
  const std::string cookie = r->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("virga_token_" + std::to_string(dash_->port()) + "=" + kToken),
            std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  const httplib::Headers with_cookie = {
      {"Cookie", "virga_token_" + std::to_string(dash_->port()) + "=" + kToken}};
  r = client_->Get("/", with_cookie);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<script src=\"/app.js\">"), std::string::npos);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  r = client_->Get("/app.js", with_cookie);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("uPlot"), std::string::npos);  // the bundled charting library
  EXPECT_NE(r->body.find("/api/jobs?history=1"), std::string::npos);  // and the page's code
  r = client_->Get("/style.css", with_cookie);
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find(".uplot"), std::string::npos);
  r = client_->Get((std::string("/api/info?token=") + kToken).c_str());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(DashboardTest, JobsListAndDetail) {
  nlohmann::json j = GetJson("/api/jobs");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["registry"], dir_.path());
  ASSERT_EQ(j["jobs"].size(), 4u);
  std::map<std::string, std::string> states;
  for (const auto& row : j["jobs"]) states[row["job_id"]] = row["state"];
  EXPECT_EQ(states["run-1"], "running");
  EXPECT_EQ(states["old-1"], "done");
  EXPECT_EQ(states["gone-1"], "orphaned");
  EXPECT_FALSE(j["jobs"][0].contains("history"));
  j = GetJson("/api/jobs?history=1");
  EXPECT_EQ(j["jobs"][0]["history"]["t"].size(), 5u);
  j = GetJson("/api/jobs/run-2");
  EXPECT_EQ(j["summary"]["job_id"], "run-2");
  EXPECT_EQ(j["status"]["live_workers"].size(), 1u);
  EXPECT_EQ(j["status"]["servers"][0]["address"], "127.0.0.1:4000");
  auto r = client_->Get("/api/jobs/nope", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(DashboardTest, JobIdsCannotEscapeTheRegistry) {
  // A status.json beside the registry that a traversal would reach.
  const std::string outside = std::filesystem::path(dir_.path()).parent_path().string();
  for (const char* path : {"/api/jobs/..", "/api/jobs/.", "/api/jobs/%2e%2e", "/api/jobs/a%20b"}) {
    auto r = client_->Get(path, Auth());
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path;
  }
  for (const char* path : {"/api/jobs/../kill", "/api/jobs/%2e%2e/kill", "/api/jobs/..%2F..%2Fx/kill"}) {
    auto r = client_->Post(path, Auth(), "", "text/plain");
    ASSERT_TRUE(r) << path;
    EXPECT_TRUE(r->status == 400 || r->status == 404) << path << " " << r->status;
  }
  EXPECT_FALSE(std::filesystem::exists(outside + "/kill"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/kill"));
}

TEST_F(DashboardTest, KillOneThenAll) {
  auto r = client_->Post("/api/jobs/run-1/kill", Auth(), "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  EXPECT_TRUE(KillFile("run-1"));
  EXPECT_FALSE(KillFile("run-2"));
  nlohmann::json j = GetJson("/api/jobs/run-1");
  EXPECT_EQ(j["summary"]["state"], "killing");  // until the job itself reports "killed"
  r = client_->Post("/api/jobs/nope/kill", Auth(), "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = client_->Post("/api/kill-all", Auth(), "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["kill_requested"].size(), 2u);  // run-1, run-2: not the ended or orphaned ones
  EXPECT_TRUE(KillFile("run-2"));
  EXPECT_FALSE(KillFile("old-1"));
  EXPECT_FALSE(KillFile("gone-1"));
}

TEST_F(DashboardTest, CrossSitePostsAndOversizedBodiesAreRefused) {
  httplib::Headers h = Auth();
  h.emplace("Origin", "http://evil.example");
  auto r = client_->Post("/api/jobs/run-1/kill", h, "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
  EXPECT_FALSE(KillFile("run-1"));
  h = Auth();
  h.emplace("Origin", "http://127.0.0.1:" + std::to_string(dash_->port()));
  r = client_->Post("/api/jobs/run-1/kill", h, "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
  r = client_->Post("/api/kill-all", Auth(), std::string(4096, 'x'), "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_FALSE(KillFile("run-2"));
}

TEST_F(DashboardTest, Metrics) {
  auto r = client_->Get("/metrics", Auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r->body.find("virga_jobs{state=\"running\"} 2\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("virga_jobs{state=\"orphaned\"} 1\n"), std::string::npos);
  EXPECT_NE(r->body.find("virga_job_workers_alive{job=\"run-1\"} 2\n"), std::string::npos);
  EXPECT_NE(r->body.find("virga_server_requests_total{server=\"127.0.0.1:4000\"}"),
            std::string::npos);
}

// A connection to `port` that has sent `bytes` and nothing more; -1 on failure.
int PartialClient(uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Seconds until the server closes `fd` (recv returns 0 or fails), at most `limit`.
double SecondsUntilClosed(int fd, double limit) {
  const auto t0 = std::chrono::steady_clock::now();
  pollfd p{fd, POLLIN, 0};
  char c;
  while (::poll(&p, 1, static_cast<int>(limit * 1000)) > 0) {
    if (::recv(fd, &c, 1, 0) <= 0) break;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST_F(DashboardTest, KillAcceptsAnEmptyPostWithoutContentLength) {
  // What `curl -X POST` sends: no body, no Content-Length. Answered at once (it used to wait
  // for a body until the read timeout, then answer 400).
  const std::string head = std::string("POST /api/jobs/run-1/kill HTTP/1.1\r\nHost: x\r\n") +
                           "Authorization: Bearer " + kToken + "\r\n\r\n";
  const auto t0 = std::chrono::steady_clock::now();
  const int fd = PartialClient(dash_->port(), head);
  ASSERT_GE(fd, 0);
  std::string reply;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (reply.find("\r\n") == std::string::npos && ::poll(&p, 1, 4000) > 0) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(reply.rfind("HTTP/1.1 202", 0), 0u) << reply;
  EXPECT_TRUE(KillFile("run-1"));
}

TEST_F(DashboardTest, SlowHeaderClientsDoNotBlockOthers) {
  // 60 clients that sent half a request head and wait (a header line every
  // few seconds would do the same): each holds a descriptor, no thread.
  std::vector<int> slow;
  const auto tc = std::chrono::steady_clock::now();
  for (int i = 0; i < 60; ++i) {
    const int fd = PartialClient(dash_->port(), "GET /api/jobs HTTP/1.1\r\nHost: x\r\n");
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
  }
  // Accepted at once (no SYN dropped from a short backlog and retried 1 s later).
  EXPECT_LT(std::chrono::steady_clock::now() - tc, std::chrono::seconds(1));
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(GetJson("/api/jobs").size(), 4u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  }
  for (int fd : slow) ::close(fd);
}

TEST(DashboardLimits, AHeadNotCompleteInTimeIsDropped) {
  TempDir dir;
  DashboardOptions o;
  o.registry_dir = dir.path();
  o.token = kToken;
  o.header_timeout_seconds = 0.5;
  auto d = Dashboard::Start(o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  // A head that never completes is dropped at its deadline.
  const int late = PartialClient((*d)->port(), "GET / HTTP/1.1\r\n");
  ASSERT_GE(late, 0);
  const double dropped = SecondsUntilClosed(late, 5);
  EXPECT_GE(dropped, 0.3);
  EXPECT_LT(dropped, 2.0);
  ::close(late);
  // Complete requests pass.
  httplib::Client c("127.0.0.1", (*d)->port());
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    auto r = c.Get("/api/jobs", {{"Authorization", std::string("Bearer ") + kToken}});
    served = r && r->status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST(DashboardStart, BadOptionsAndBusyPorts) {
  TempDir dir;
  DashboardOptions o;
  o.registry_dir = dir.path();
  o.bind = "";
  EXPECT_TRUE(Dashboard::Start(o).status().IsInvalidArgument());
  o.bind = "127.0.0.1";
  auto a = Dashboard::Start(o);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->token().size(), 32u);  // a random one
  auto b = Dashboard::Start(o);
  ASSERT_TRUE(b.ok());
  EXPECT_NE((*a)->token(), (*b)->token());
  o.port = (*a)->port();
  auto c = Dashboard::Start(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(c.status().message().find(std::to_string(o.port)), std::string::npos);
  (*a)->Stop();
  (*a)->Stop();  // idempotent
}

// The gate alone (admission is synchronous there): the per-peer cap.
TEST(HeaderGate, CapsConnectionsPerPeerAndServesCompleteHeads) {
  std::atomic<int> served{0};
  dash::HeaderGateOptions o;
  o.max_per_peer = 2;  // socketpairs all have the same (unnamed) peer
  dash::HeaderGate gate(o, [&](int fd) {
    served.fetch_add(1);
    ::close(fd);
  });
  int p[4][2];
  for (auto& pair : p) ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  gate.Admit(p[0][0]);
  gate.Admit(p[1][0]);
  gate.Admit(p[2][0]);  // over the cap: closed at once
  EXPECT_LT(SecondsUntilClosed(p[2][1], 2), 0.5);
  ASSERT_EQ(::send(p[0][1], "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL), 18);
  for (int i = 0; i < 200 && served.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(served.load(), 1);  // a complete head is served, and frees its slot
  for (int i = 0; i < 200 && gate.counters().served == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  gate.Admit(p[3][0]);
  EXPECT_EQ(gate.counters().rejected, 1u);
  EXPECT_EQ(gate.counters().admitted, 3u);
  gate.Stop();
  for (auto& pair : p) ::close(pair[1]);
}

}  // namespace
}  // namespace virga
