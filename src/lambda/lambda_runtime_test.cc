#include "lambda/lambda_runtime.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "lambda/fake_runtime_api.h"
#include "lambda/lambda_event.h"

namespace virga::lambda {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

int g_counter = 0;  // a child's change must not reach the next child

// The payloads of these tests: a word each.
int TestPayload(std::string_view payload) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string("(unset)");
  };
  if (payload == "exit3") {
    std::printf("{\"result\":1}\n");
    std::fprintf(stderr, "warning: three\n");
    return 3;
  }
  if (payload == "env") {
    json j;
    for (const char* name : {"VIRGA_FUNCTION_ID", "VIRGA_FUNCTION_LIFETIME_MS",
                             "VIRGA_FUNCTION_MEMORY_MB", "VIRGA_INVOCATION_ID", "_X_AMZN_TRACE_ID"})
      j[name] = env(name);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  if (payload == "set") {
    ::setenv("VIRGA_TEST_LEAK", "1", 1);
    ++g_counter;
  }
  if (payload == "set" || payload == "get") {
    std::printf("%s %d\n", env("VIRGA_TEST_LEAK").c_str(), g_counter);
    return 0;
  }
  if (payload == "sleep") {
    std::this_thread::sleep_for(30s);
    return 0;
  }
  if (payload == "control") {  // 1.1 MiB that JSON writes six times longer
    std::string bytes(1'100'000, '\x01');
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    return 0;
  }
  if (payload == "crash") ::raise(SIGABRT);  // SIGSEGV would be a sanitizer report in those builds
  return 99;
}

LambdaRuntimeOptions TestOptions(const FakeRuntimeApi& api, uint64_t invocations) {
  LambdaRuntimeOptions o;
  o.run_payload = TestPayload;
  o.base_url = api.base_url();
  o.memory_mb = 512;
  o.enforce_memory_cap = false;
  o.tee_stderr = false;
  o.log = false;
  o.max_invocations = invocations;
  o.api.backoff = 1ms;
  o.api.max_backoff = 10ms;
  return o;
}

std::string Event(uint64_t function_id, std::string payload, uint32_t lifetime_ms = 0) {
  LambdaEvent e;
  e.function_id = function_id;
  e.label = "test";
  e.lifetime_ms = lifetime_ms;
  e.payload = std::move(payload);
  return EventToJson(e);
}

int64_t EpochMsIn(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             (std::chrono::system_clock::now() + d).time_since_epoch())
      .count();
}

InvocationReport ParseReport(const std::string& text) {
  Result<InvocationReport> r = ReportFromJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << ": " << text;
  return r.ok() ? *r : InvocationReport{};
}

TEST(LambdaRuntime, RunsThePayloadAndPostsTheReport) {
  FakeRuntimeApi api;
  api.Push({"req-1", Event(41, "exit3"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 1)).ok());
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].kind, "response");
  EXPECT_EQ(posts[0].request_id, "req-1");
  InvocationReport r = ParseReport(posts[0].body);
  EXPECT_EQ(r.function_id, 41u);
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.reason, "exit 3");
  EXPECT_EQ(r.output, "{\"result\":1}\n");
  EXPECT_EQ(r.stderr_tail, "warning: three\n");
  EXPECT_GT(r.wall_seconds, 0);
  EXPECT_GT(r.peak_rss_bytes, 0u);
}

TEST(LambdaRuntime, ChildEnvironment) {
  FakeRuntimeApi api;
  api.Push({"req-a", Event(7, "env", 20'000), EpochMsIn(100s),
            "Root=1-5759e988-bd862e3fe1be46a994272793"});
  api.Push({"req-b", Event(8, "env"), EpochMsIn(10s), ""});
  api.Push({"req-c", Event(9, "env", 1234), 0, ""});  // no deadline header
  ::setenv("_X_AMZN_TRACE_ID", "from-the-parent", 1);
  Status s = RunLambdaRuntime(TestOptions(api, 3));
  ::unsetenv("_X_AMZN_TRACE_ID");
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto posts = api.WaitForPosts(3, 5s);
  ASSERT_EQ(posts.size(), 3u);
  json a = json::parse(ParseReport(posts[0].body).output);
  EXPECT_EQ(a["VIRGA_FUNCTION_ID"], "7");
  EXPECT_EQ(a["VIRGA_FUNCTION_LIFETIME_MS"], "20000");  // the event's, within 100 s - 5 %
  EXPECT_EQ(a["VIRGA_FUNCTION_MEMORY_MB"], "512");
  EXPECT_EQ(a["VIRGA_INVOCATION_ID"], "req-a");
  EXPECT_EQ(a["_X_AMZN_TRACE_ID"], "Root=1-5759e988-bd862e3fe1be46a994272793");
  // None asked: the deadline's, 10 s minus max(1 s, 5 %), less the time already spent.
  json b = json::parse(ParseReport(posts[1].body).output);
  const int lifetime = std::stoi(b["VIRGA_FUNCTION_LIFETIME_MS"].get<std::string>());
  EXPECT_LE(lifetime, 9'000);
  EXPECT_GT(lifetime, 8'000);
  EXPECT_EQ(b["_X_AMZN_TRACE_ID"], "(unset)");  // no header: not the parent's value either
  json c = json::parse(ParseReport(posts[2].body).output);
  EXPECT_EQ(c["VIRGA_FUNCTION_LIFETIME_MS"], "1234");
}

TEST(LambdaRuntime, ChildLifetime) {
  LambdaRuntimeOptions o;
  EXPECT_EQ(ChildLifetimeMs(0, -1, o), 0u);  // nothing bounds it
  EXPECT_EQ(ChildLifetimeMs(5'000, -1, o), 5'000u);
  EXPECT_EQ(ChildLifetimeMs(0, 100'000, o), 95'000u);  // 5 % margin
  EXPECT_EQ(ChildLifetimeMs(0, 10'000, o), 9'000u);    // 1 s margin
  EXPECT_EQ(ChildLifetimeMs(3'000, 100'000, o), 3'000u);
  EXPECT_EQ(ChildLifetimeMs(0, 500, o), 1u);  // past the margin: at once, never "none"
  EXPECT_EQ(ChildLifetimeMs(0, 900'000, o), 855'000u);
}

TEST(LambdaRuntime, MalformedEventsAreBadEvent) {
  FakeRuntimeApi api;
  api.Push({"bad-1", "{not json", EpochMsIn(60s), ""});
  api.Push({"bad-2", R"({"virga":1,"function_id":-3,"payload":"env"})", EpochMsIn(60s), ""});
  api.Push({"bad-3", R"({"virga":1,"function_id":3})", EpochMsIn(60s), ""});
  api.Push({"good", Event(4, "get"), EpochMsIn(60s), ""});  // the loop goes on
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 4)).ok());
  auto posts = api.WaitForPosts(4, 5s);
  ASSERT_EQ(posts.size(), 4u);
  const char* fields[] = {"not JSON", "field 'function_id'", "field 'payload': missing"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(posts[i].kind, "error");
    EXPECT_EQ(posts[i].request_id, "bad-" + std::to_string(i + 1));
    EXPECT_EQ(posts[i].error_type, "Virga.BadEvent");
    json doc = json::parse(posts[i].body);
    EXPECT_EQ(doc["errorType"], "Virga.BadEvent");
    EXPECT_TRUE(doc["stackTrace"].is_array());
    EXPECT_NE(doc["errorMessage"].get<std::string>().find(fields[i]), std::string::npos)
        << doc["errorMessage"];
  }
  EXPECT_EQ(posts[3].kind, "response");
}

TEST(LambdaRuntime, WarmInvocationsShareNoState) {
  FakeRuntimeApi api;
  api.Push({"r1", Event(1, "set"), EpochMsIn(60s), ""});
  api.Push({"r2", Event(2, "get"), EpochMsIn(60s), ""});
  api.Push({"r3", Event(3, "set"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 3)).ok());
  auto posts = api.WaitForPosts(3, 5s);
  ASSERT_EQ(posts.size(), 3u);
  EXPECT_EQ(ParseReport(posts[0].body).output, "1 1\n");
  EXPECT_EQ(ParseReport(posts[1].body).output,
            "(unset) 0\n");  // neither the variable nor the count
  EXPECT_EQ(ParseReport(posts[2].body).output, "1 1\n");
  EXPECT_EQ(std::getenv("VIRGA_TEST_LEAK"), nullptr);
  EXPECT_EQ(g_counter, 0);
}

TEST(LambdaRuntime, KillsTheChildAtTheDeadline) {
  FakeRuntimeApi api;
  api.Push({"slow", Event(5, "sleep"), EpochMsIn(1'500ms), ""});
  LambdaRuntimeOptions o = TestOptions(api, 1);
  o.kill_margin = 300ms;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunLambdaRuntime(o).ok());
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].kind, "response");  // what it has, not an error
  InvocationReport r = ParseReport(posts[0].body);
  EXPECT_EQ(r.exit_code, -9);
  EXPECT_NE(r.reason.find("killed"), std::string::npos) << r.reason;
  EXPECT_GT(took, 1.0);
  EXPECT_LT(took, 1.5);  // before the deadline
}

TEST(LambdaRuntime, CrashIsVirgaCrashedWithTheReport) {
  FakeRuntimeApi api;
  api.Push({"boom", Event(6, "crash"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 1)).ok());
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].kind, "error");
  EXPECT_EQ(posts[0].error_type, "Virga.Crashed");
  json doc = json::parse(posts[0].body);
  EXPECT_EQ(doc["errorType"], "Virga.Crashed");
  InvocationReport r = ParseReport(doc["errorMessage"].get<std::string>());
  EXPECT_EQ(r.function_id, 6u);
  EXPECT_EQ(r.request_id, "boom");
  EXPECT_EQ(r.exit_code, -SIGABRT);
  EXPECT_EQ(r.reason, "signal 6 (Aborted)");
}

TEST(LambdaRuntime, ReportFitsLambdasResponseLimit) {
  FakeRuntimeApi api;
  api.Push({"big", Event(1, "control"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 1)).ok());
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_LE(posts[0].body.size(), 5'000'000u);
  InvocationReport r = ParseReport(posts[0].body);
  EXPECT_TRUE(r.output_truncated);
  EXPECT_GE(r.output.size(), 500'000u);  // cut to fit, not dropped
  EXPECT_EQ(r.output.find_first_not_of('\x01'), std::string::npos);
}

TEST(LambdaRuntime, PostRetriedAfter500) {
  FakeRuntimeApi api;
  api.FailPosts(2, 500);
  api.Push({"r", Event(1, "get"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 1)).ok());
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].kind, "response");
  EXPECT_EQ(api.posts_failed(), 2);
}

TEST(LambdaRuntime, PostNotRetriedAfter400) {
  FakeRuntimeApi api;
  api.FailPosts(1, 400);
  api.Push({"r1", Event(1, "get"), EpochMsIn(60s), ""});
  api.Push({"r2", Event(2, "get"), EpochMsIn(60s), ""});
  ASSERT_TRUE(RunLambdaRuntime(TestOptions(api, 2)).ok());  // logged, the loop goes on
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].request_id, "r2");
  EXPECT_EQ(api.posts_failed(), 1);
}

TEST(LambdaRuntime, NextErrorEndsTheLoop) {
  FakeRuntimeApi api(100ms);  // no event: `next` answers 500
  Status s = RunLambdaRuntime(TestOptions(api, 0));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("HTTP 500"), std::string::npos) << s.ToString();
}

TEST(LambdaRuntime, NextRetriesTransportFaultsThenGivesUp) {
  int port = 0;
  {
    FakeRuntimeApi closed;  // a port nobody listens on once it is gone
    port = std::stoi(closed.host_port().substr(10));
  }
  LambdaRuntimeOptions o;
  o.run_payload = TestPayload;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/2018-06-01/runtime/";
  o.memory_mb = 128;
  o.api.next_attempts = 3;
  o.api.backoff = 1ms;
  Status s = RunLambdaRuntime(o);
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
}

TEST(LambdaRuntime, MissingOrBadRuntimeApiAddress) {
  const char* saved = std::getenv("AWS_LAMBDA_RUNTIME_API");
  const std::string keep = saved ? saved : "";
  LambdaRuntimeOptions o;
  o.run_payload = TestPayload;
  o.memory_mb = 128;
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  Status s = RunLambdaRuntime(o);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("AWS_LAMBDA_RUNTIME_API is not set"), std::string::npos);
  for (const char* bad : {"localhost", "host:", "host:http", "ho st:80", "h/x:80", ":80"}) {
    ::setenv("AWS_LAMBDA_RUNTIME_API", bad, 1);
    s = RunLambdaRuntime(o);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad << ": " << s.ToString();
  }
  EXPECT_TRUE(RuntimeApiClient::BaseUrlFor("127.0.0.1:9001").ok());
  EXPECT_EQ(*RuntimeApiClient::BaseUrlFor("[::1]:9001"), "http://[::1]:9001/2018-06-01/runtime/");
  if (saved) {
    ::setenv("AWS_LAMBDA_RUNTIME_API", keep.c_str(), 1);
  } else {
    ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  }
}

TEST(LambdaRuntime, InitErrorWhenTheMemorySizeIsMissing) {
  FakeRuntimeApi api;
  ::unsetenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
  ::setenv("AWS_LAMBDA_RUNTIME_API", api.host_port().c_str(), 1);
  LambdaRuntimeOptions o;
  o.run_payload = TestPayload;  // base_url and memory_mb from the environment
  Status s = RunLambdaRuntime(o);
  ::unsetenv("AWS_LAMBDA_RUNTIME_API");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  auto posts = api.WaitForPosts(1, 5s);
  ASSERT_EQ(posts.size(), 1u);
  EXPECT_EQ(posts[0].kind, "init/error");
  EXPECT_EQ(posts[0].error_type, "Virga.InitError");
  json doc = json::parse(posts[0].body);
  EXPECT_NE(doc["errorMessage"].get<std::string>().find("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            std::string::npos);
}

}  // namespace
}  // namespace virga::lambda
