// The lambda backend's side of the protocol, against a scripted Invoke
// endpoint (cpp-httplib, in the test) and a real parameter server for the
// job's key-value store. The functions themselves are played by the test,
// writing the keys a worker writes (include/virga/worker.h). The real
// runtime against a Lambda service is tests/lambda_e2e_test.sh.
#include "backend/lambda_backend.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

#include "ps/server.h"
#include "virga/ps_client.h"
#include "virga/worker.h"

namespace virga {
namespace {

using std::chrono::milliseconds;
constexpr char kToken[] = "lambda-test-token";

class LambdaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ps::PsServerOptions o;
    o.net.token = kToken;
    o.net.port = 0;
    server_ = std::make_unique<ps::PsServer>(o);
    ASSERT_TRUE(server_->Start().ok());
    PsClientOptions co;
    co.servers = {"127.0.0.1:" + std::to_string(server_->port())};
    co.token = kToken;
    auto c = PsClient::Connect(co);
    ASSERT_TRUE(c.ok());
    kv_ = std::move(*c);

    http_.Post(R"(/2015-03-31/functions/([^/]+)/invocations)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 std::lock_guard<std::mutex> l(mu_);
                 Call call{req.matches[1], req.get_header_value("X-Amz-Invocation-Type"),
                           req.get_header_value("Authorization"), req.body};
                 calls_.push_back(call);
                 if (call.function == "missing") {
                   res.status = 404;
                   res.set_header("x-amzn-ErrorType", "ResourceNotFoundException");
                   res.set_content(R"({"Type":"User","Message":"Function not found: missing"})",
                                   "application/json");
                   return;
                 }
                 if (call.type == "DryRun") {
                   res.status = 204;
                   return;
                 }
                 int status = 202;
                 if (!script_.empty()) {
                   status = script_.front();
                   script_.pop_front();
                 }
                 res.status = status;
                 if (status == 429) {
                   res.set_header("x-amzn-ErrorType", "TooManyRequestsException");
                   res.set_content(R"({"message":"Rate Exceeded."})", "application/json");
                 }
               });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  void TearDown() override {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }

  LambdaBackendOptions Options(const std::string& function = "trainer") {
    LambdaBackendOptions o;
    o.function = function;
    o.aws.credentials = {"AKIDTEST", "secret-for-the-test", ""};
    o.aws.region = "eu-west-1";
    o.aws.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    o.poll_interval = milliseconds(20);
    return o;
  }
  std::string Payload(const std::string& job) const {
    return nlohmann::json{{"job", job},
                          {"servers", {"127.0.0.1:" + std::to_string(server_->port())}},
                          {"token", kToken},
                          {"store", "file:///nowhere"}}
        .dump();
  }
  std::vector<nlohmann::json> Events() {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<nlohmann::json> out;
    for (const Call& c : calls_) {
      if (c.type == "Event") out.push_back(nlohmann::json::parse(c.body));
    }
    return out;
  }
  // Waits until `pred` holds (polling), at most 5 s.
  template <typename F>
  bool Eventually(F pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return pred();
  }
  // Plays a worker: its claim, a running report, then a final one.
  void Report(const std::string& job, uint64_t id, const std::string& end_reason,
              double wall = 1.0) {
    WorkerResult r;
    r.function_id = id;
    r.end_reason = end_reason;
    r.wall_seconds = wall;
    r.peak_rss_bytes = 123 << 20;
    ASSERT_TRUE(kv_->Put(FunctionStatsKey(job, id), ResultToJson(r)).ok());
  }

  struct Call {
    std::string function, type, authorization, body;
  };
  std::unique_ptr<ps::PsServer> server_;
  std::unique_ptr<PsClient> kv_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Call> calls_;  // GUARDED_BY(mu_)
  std::deque<int> script_;   // GUARDED_BY(mu_): statuses for the next Event calls
};

TEST_F(LambdaBackendTest, EventInvocationAndStatesFromTheKv) {
  auto b = MakeLambdaBackend(Options());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  FunctionLimits limits;
  limits.label = "job-a/w0";
  limits.memory_mb = 2048;
  limits.lifetime = milliseconds(60'000);
  auto id = (*b)->Launch(Payload("job-a"), limits);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(Eventually([&] { return Events().size() == 1; }));
  const nlohmann::json e = Events()[0];
  EXPECT_EQ(e["virga"], 1);
  EXPECT_EQ(e["function_id"], *id);
  EXPECT_EQ(e["label"], "job-a/w0");
  EXPECT_EQ(e["lifetime_ms"], 60'000);
  EXPECT_EQ(e["payload"], Payload("job-a"));
  {
    std::lock_guard<std::mutex> l(mu_);
    EXPECT_NE(calls_.back().authorization.find("/eu-west-1/lambda/aws4_request"), std::string::npos);
    EXPECT_EQ(calls_.front().type, "DryRun");  // the check at creation
  }
  EXPECT_EQ((*b)->Query(*id)->state, FunctionState::kStarting);
  ASSERT_TRUE(kv_->Put(FunctionClaimKey("job-a", *id), "request-1").ok());
  ASSERT_TRUE(Eventually([&] { return (*b)->Query(*id)->state == FunctionState::kRunning; }));
  Report("job-a", *id, "done", 2.5);
  auto info = (*b)->Wait(*id, milliseconds(5000));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, FunctionState::kSucceeded);
  EXPECT_EQ(info->reason, "done");
  EXPECT_DOUBLE_EQ(info->wall_seconds, 2.5);
  EXPECT_DOUBLE_EQ(info->gb_seconds, 2.0 * 2.5);
  EXPECT_EQ(info->peak_rss_bytes, uint64_t{123} << 20);
  EXPECT_NE(info->output.find("\"end_reason\":\"done\""), std::string::npos) << info->output;
}

TEST_F(LambdaBackendTest, ThrottledInvocationsAreRetried) {
  {
    std::lock_guard<std::mutex> l(mu_);
    script_ = {429, 429, 503, 202};
  }
  auto b = MakeLambdaBackend(Options());
  ASSERT_TRUE(b.ok());
  auto id = (*b)->Launch(Payload("job-t"), FunctionLimits{});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Eventually([&] { return Events().size() == 4; }));
  ASSERT_TRUE(kv_->Put(FunctionClaimKey("job-t", *id), "r").ok());
  ASSERT_TRUE(Eventually([&] { return (*b)->Query(*id)->state == FunctionState::kRunning; }));
}

TEST_F(LambdaBackendTest, ThrottlingBeyondTheAttemptsFailsTheFunctionWithTheReason) {
  {
    std::lock_guard<std::mutex> l(mu_);
    script_ = {429, 429, 429};
  }
  LambdaBackendOptions o = Options();
  o.max_invoke_attempts = 3;
  auto b = MakeLambdaBackend(o);
  ASSERT_TRUE(b.ok());
  auto id = (*b)->Launch(Payload("job-t2"), FunctionLimits{});
  ASSERT_TRUE(id.ok());
  auto info = (*b)->Wait(*id, milliseconds(10'000));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, FunctionState::kFailed);
  EXPECT_NE(info->reason.find("429 TooManyRequestsException"), std::string::npos) << info->reason;
  EXPECT_NE(info->reason.find("after 3 tries"), std::string::npos) << info->reason;
}

TEST_F(LambdaBackendTest, AMissingFunctionFailsAtCreation) {
  auto b = MakeLambdaBackend(Options("missing"));
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(b.status().IsInvalidArgument());
  EXPECT_NE(b.status().message().find("'missing'"), std::string::npos) << b.status().ToString();
  EXPECT_NE(b.status().message().find("ResourceNotFoundException"), std::string::npos);
  EXPECT_NE(b.status().message().find("127.0.0.1:" + std::to_string(port_)), std::string::npos);
}

TEST_F(LambdaBackendTest, AFunctionThatNeverStartsIsLostAndToldToStop) {
  LambdaBackendOptions o = Options();
  o.start_timeout = milliseconds(300);
  auto b = MakeLambdaBackend(o);
  ASSERT_TRUE(b.ok());
  auto id = (*b)->Launch(Payload("job-n"), FunctionLimits{});
  auto info = (*b)->Wait(*id, milliseconds(5000));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, FunctionState::kFailed);
  EXPECT_NE(info->reason.find("lost: did not start"), std::string::npos) << info->reason;
  std::string v;
  ASSERT_TRUE(Eventually([&] { return kv_->Get(FunctionKillKey("job-n", *id), &v).ok(); }));
}

TEST_F(LambdaBackendTest, ASilentFunctionIsLost) {
  LambdaBackendOptions o = Options();
  o.heartbeat_timeout = milliseconds(300);
  auto b = MakeLambdaBackend(o);
  ASSERT_TRUE(b.ok());
  auto id = (*b)->Launch(Payload("job-s"), FunctionLimits{});
  ASSERT_TRUE(Eventually([&] { return Events().size() == 1; }));
  ASSERT_TRUE(kv_->Put(FunctionClaimKey("job-s", *id), "r").ok());
  Report("job-s", *id, "running");
  auto info = (*b)->Wait(*id, milliseconds(5000));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, FunctionState::kFailed);
  EXPECT_NE(info->reason.find("no heartbeat"), std::string::npos) << info->reason;
}

TEST_F(LambdaBackendTest, KillGoesThroughTheKillKey) {
  auto b = MakeLambdaBackend(Options());
  ASSERT_TRUE(b.ok());
  auto id = (*b)->Launch(Payload("job-k"), FunctionLimits{});
  ASSERT_TRUE(Eventually([&] { return Events().size() == 1; }));
  ASSERT_TRUE(kv_->Put(FunctionClaimKey("job-k", *id), "r").ok());
  ASSERT_TRUE(Eventually([&] { return (*b)->Query(*id)->state == FunctionState::kRunning; }));
  ASSERT_TRUE((*b)->Kill(*id).ok());
  std::string v;
  ASSERT_TRUE(Eventually([&] { return kv_->Get(FunctionKillKey("job-k", *id), &v).ok(); }));
  Report("job-k", *id, "killed");
  auto info = (*b)->Wait(*id, milliseconds(5000));
  EXPECT_EQ(info->state, FunctionState::kKilled);
}

TEST_F(LambdaBackendTest, AtMostMaxConcurrencyInFlight) {
  LambdaBackendOptions o = Options();
  o.max_concurrency = 2;
  auto b = MakeLambdaBackend(o);
  ASSERT_TRUE(b.ok());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(*(*b)->Launch(Payload("job-c"), FunctionLimits{}));
  ASSERT_TRUE(Eventually([&] { return Events().size() == 2; }));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(Events().size(), 2u);  // the other two wait for a free slot
  const uint64_t first = Events()[0]["function_id"];
  ASSERT_TRUE(kv_->Put(FunctionClaimKey("job-c", first), "r").ok());
  Report("job-c", first, "done");
  ASSERT_TRUE(Eventually([&] { return Events().size() == 3; }));
}

TEST_F(LambdaBackendTest, PayloadsAreReferencesOnly) {
  auto b = MakeLambdaBackend(Options());
  ASSERT_TRUE(b.ok());
  nlohmann::json big = nlohmann::json::parse(Payload("job-big"));
  big["blob"] = std::string(1100 * 1000, 'x');
  auto r = (*b)->Launch(big.dump(), FunctionLimits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("1 MB"), std::string::npos) << r.status().ToString();
  auto channel = (*b)->Launch(R"({"channel":"store"})", FunctionLimits{});
  EXPECT_TRUE(channel.status().IsInvalidArgument());
  EXPECT_NE(channel.status().message().find("local backend"), std::string::npos);
}

}  // namespace
}  // namespace virga
