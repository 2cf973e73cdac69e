// Payload/result JSON, work item text and the iteration histogram.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "virga/worker.h"
#include "worker/iteration_stats.h"
#include "worker/work_ledger.h"

namespace virga {
namespace {

WorkerPayload Sample() {
  WorkerPayload p;
  p.job = "job-7";
  p.servers = {"127.0.0.1:5000", "10.0.0.2:5001"};
  p.token = "secret";
  p.store = "mem://x";
  p.dataset = "criteo";
  p.table = "job-7.w";
  p.queue = "job-7.q";
  p.model = "svm";
  p.minibatch = 20;
  p.staleness = 2;
  p.workers = 4;
  p.epochs = 3;
  p.items = 120;
  p.lease_ms = 5000;
  p.lifetime_ms = 900000;
  p.stop_margin_ms = 100;
  p.max_idle_ms = 500;
  p.max_fault_ms = 7000;
  p.spin_us = 50;
  return p;
}

std::string ErrorOf(const std::string& json) {
  auto r = PayloadFromJson(json);
  EXPECT_FALSE(r.ok()) << json;
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  return r.status().message();
}

TEST(WorkerPayload, RoundTrips) {
  const WorkerPayload p = Sample();
  auto back = PayloadFromJson(PayloadToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(PayloadToJson(*back), PayloadToJson(p));
  EXPECT_EQ(back->servers, p.servers);
  EXPECT_EQ(back->staleness, 2);
  EXPECT_EQ(back->spin_us, 50u);
}

TEST(WorkerPayload, DefaultsFillOptionalFields) {
  auto p = PayloadFromJson(
      R"({"job":"j","servers":["h:1"],"store":"mem://s","table":"t","queue":"q"})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->model, "lr");
  EXPECT_EQ(p->minibatch, 200u);
  EXPECT_EQ(p->staleness, -1);
  EXPECT_EQ(p->max_idle_ms, 2000u);
}

TEST(WorkerPayload, ErrorsNameTheField) {
  nlohmann::json j = nlohmann::json::parse(PayloadToJson(Sample()));
  auto with = [&](const char* field, nlohmann::json v) {
    nlohmann::json c = j;
    c[field] = std::move(v);
    return ErrorOf(c.dump());
  };
  EXPECT_EQ(with("minibatch", "20"), "payload: field 'minibatch': expected unsigned 32-bit integer");
  EXPECT_EQ(with("minibatch", 0), "payload: field 'minibatch': must be >= 1");
  EXPECT_EQ(with("staleness", -2), "payload: field 'staleness': must be -1 (asynchronous) or >= 0");
  EXPECT_EQ(with("servers", nlohmann::json::array({"a:1", 5})),
            "payload: field 'servers[1]': expected string");
  EXPECT_EQ(with("servers", nlohmann::json::array()),
            "payload: field 'servers': must name at least one server");
  EXPECT_NE(with("model", "gbdt").find("payload: field 'model': unknown model 'gbdt'"), std::string::npos);
  EXPECT_EQ(with("minibach", 20), "payload: field 'minibach': unknown field");
  nlohmann::json missing = j;
  missing.erase("queue");
  EXPECT_EQ(ErrorOf(missing.dump()), "payload: field 'queue': missing");
  EXPECT_EQ(ErrorOf("{"), "payload: not valid JSON");
  EXPECT_EQ(ErrorOf("[]"), "payload: expected a JSON object");
}

TEST(WorkerResult, RoundTrips) {
  WorkerResult r;
  r.function_id = 12;
  r.end_reason = "lifetime";
  r.samples = 1000;
  r.items_acked = 4;
  r.items_released = 1;
  r.items_lost = 2;
  r.items_rejected = 3;
  r.train_loss = 0.5;
  r.epoch_samples = {600, 400};
  r.epoch_loss = {400.5, 180.25};
  r.stale_waits = 7;
  r.stale_timeouts = 1;
  r.server_faults = 9;
  r.pulls_early = 11;
  r.pulls_with_push = 12;
  r.wall_seconds = 3.25;
  r.times.iterations = 50;
  r.times.data_wait_us = 1.5;
  r.times.pull_us = 20;
  r.times.compute_us = 3;
  r.times.push_us = 4;
  r.times.p50_us = 29;
  r.times.p99_us = 80;
  r.times.histogram = {0, 0, 5, 45};
  auto back = ResultFromJson(ResultToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(ResultToJson(*back), ResultToJson(r));
  EXPECT_EQ(back->times.histogram, r.times.histogram);
  EXPECT_EQ(back->epoch_loss, r.epoch_loss);
  // Older results without the newer fields still parse; errors name fields.
  EXPECT_TRUE(ResultFromJson(R"({"end_reason":"done","extra":1})").ok());
  auto bad = ResultFromJson(R"({"end_reason":"done","times":{"histogram":[1,-2]}})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "worker result: times: field 'histogram[1]': expected unsigned integer");
}

TEST(WorkItem, ParsesAndFormats) {
  auto w = worker::ParseWorkItem("2 17 datasets/a/train/part-00003 256 512");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->epoch, 2u);
  EXPECT_EQ(w->index, 17u);
  EXPECT_EQ(w->key, "datasets/a/train/part-00003");
  EXPECT_EQ(w->begin, 256u);
  EXPECT_EQ(w->end, 512u);
  EXPECT_EQ(worker::FormatWorkItem(*w), "2 17 datasets/a/train/part-00003 256 512");
  for (const char* bad : {"", "1 2 key 3", "x 2 key 3 4", "1 2 key 5 4", "1 2  3 4", "1 2 key 3 4x",
                          "-1 2 key 3 4"}) {
    auto r = worker::ParseWorkItem(bad);
    EXPECT_TRUE(r.status().IsInvalidArgument()) << "'" << bad << "'";
  }
}

TEST(IterationStats, HistogramQuantiles) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(worker::HistogramBucket(0), 0u);
  EXPECT_EQ(worker::HistogramBucket(2), 8u);
  EXPECT_EQ(worker::HistogramBucket(1024), 80u);
  EXPECT_EQ(worker::HistogramBucket(UINT64_MAX), worker::kHistogramBuckets - 1);
  worker::IterationStats s;
  for (int i = 0; i < 98; ++i) s.Record(nanoseconds(1), nanoseconds(2), nanoseconds(3), nanoseconds(4), nanoseconds(20000));
  for (int i = 0; i < 2; ++i) s.Record({}, {}, {}, {}, nanoseconds(1000000));
  IterationTimes t = s.Summary();
  EXPECT_EQ(t.iterations, 100u);
  EXPECT_NEAR(t.p50_us, 20.0, 20.0 * 0.05);  // within a bucket (9%)
  EXPECT_NEAR(t.p99_us, 1000.0, 1000.0 * 0.05);
  EXPECT_NEAR(t.pull_us, 2 * 98 / 100.0 / 1000.0, 1e-9);
  EXPECT_EQ(t.histogram.size(), worker::HistogramBucket(1000000) + 1);
  EXPECT_EQ(worker::HistogramQuantileUs({}, 0.5), 0.0);
}

}  // namespace
}  // namespace virga
