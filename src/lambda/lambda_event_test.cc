#include "lambda/lambda_event.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace virga::lambda {
namespace {

TEST(LambdaEvent, RoundTrip) {
  LambdaEvent e;
  e.function_id = 18446744073709551615ull;
  e.label = "job-3/w2";
  e.lifetime_ms = 60'000;
  e.payload = R"({"job":"j","servers":["h:1"]})";
  const std::string json = EventToJson(e);
  EXPECT_EQ(json.rfind(R"({"virga":1,"function_id":18446744073709551615,"label":"job-3/w2",)", 0),
            0u)
      << json;
  Result<LambdaEvent> back = EventFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->function_id, e.function_id);
  EXPECT_EQ(back->label, e.label);
  EXPECT_EQ(back->lifetime_ms, e.lifetime_ms);
  EXPECT_EQ(back->payload, e.payload);
}

TEST(LambdaEvent, OptionalAndUnknownFields) {
  Result<LambdaEvent> e = EventFromJson(R"({"virga":1,"function_id":7,"payload":"x","new":[1]})");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->function_id, 7u);
  EXPECT_EQ(e->label, "");
  EXPECT_EQ(e->lifetime_ms, 0u);
  EXPECT_EQ(e->payload, "x");
}

TEST(LambdaEvent, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"not json", "event: not JSON"},
      {"[1]", "event: not a JSON object"},
      {R"({"function_id":1,"payload":""})", "event: field 'virga': missing"},
      {R"({"virga":2,"function_id":1,"payload":""})",
       "event: field 'virga': unsupported version 2"},
      {R"({"virga":1,"payload":""})", "event: field 'function_id': missing"},
      {R"({"virga":1,"function_id":-1,"payload":""})",
       "event: field 'function_id': expected unsigned 64-bit integer"},
      {R"({"virga":1,"function_id":"1","payload":""})",
       "event: field 'function_id': expected unsigned 64-bit integer"},
      {R"({"virga":1,"function_id":1})", "event: field 'payload': missing"},
      {R"({"virga":1,"function_id":1,"payload":{}})", "event: field 'payload': expected string"},
      {R"({"virga":1,"function_id":1,"payload":"","lifetime_ms":4294967296})",
       "event: field 'lifetime_ms': expected unsigned 32-bit integer"},
      {R"({"virga":1,"function_id":1,"payload":"","label":3})",
       "event: field 'label': expected string"},
  };
  for (const Case& c : cases) {
    Result<LambdaEvent> e = EventFromJson(c.json);
    ASSERT_FALSE(e.ok()) << c.json;
    EXPECT_TRUE(e.status().IsInvalidArgument());
    EXPECT_EQ(e.status().message().rfind(c.message, 0), 0u) << e.status().message();
  }
}

TEST(LambdaEvent, ReportRoundTripAndFieldOrder) {
  InvocationReport r;
  r.function_id = 5;
  r.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
  r.exit_code = -9;
  r.reason = "killed";
  r.output = "{\"end_reason\":\"done\"}\n";
  r.stderr_tail = "tail";
  r.wall_seconds = 1.5;
  r.peak_rss_bytes = 1 << 20;
  r.cpu_seconds = 0.25;
  const std::string json = ReportToJson(r);
  EXPECT_EQ(json, R"({"function_id":5,"request_id":"8476a536-e9f4-11e8-9739-2dfe598c3fcd",)"
                  R"("exit_code":-9,"reason":"killed","output":"{\"end_reason\":\"done\"}\n",)"
                  R"("output_truncated":false,"stderr_tail":"tail","wall_seconds":1.5,)"
                  R"("peak_rss_bytes":1048576,"cpu_seconds":0.25})");
  Result<InvocationReport> back = ReportFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->exit_code, -9);
  EXPECT_EQ(back->output, r.output);
  EXPECT_EQ(back->peak_rss_bytes, r.peak_rss_bytes);
  EXPECT_DOUBLE_EQ(back->cpu_seconds, 0.25);
}

TEST(LambdaEvent, ReportOfInvalidUtf8IsStillJson) {
  InvocationReport r;
  r.output = std::string("ok \xff\xfe bytes");
  r.stderr_tail = std::string("\xc3");  // a tail cut inside a character
  const std::string json = ReportToJson(r);
  EXPECT_TRUE(nlohmann::json::accept(json)) << json;
  Result<InvocationReport> back = ReportFromJson(json);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->output.rfind("ok ", 0), 0u);
}

TEST(LambdaEvent, ErrorDocument) {
  EXPECT_EQ(ErrorToJson(kErrorBadEvent, "event: field 'payload': missing"),
            R"({"errorMessage":"event: field 'payload': missing","errorType":"Virga.BadEvent",)"
            R"("stackTrace":[]})");
}

}  // namespace
}  // namespace virga::lambda
