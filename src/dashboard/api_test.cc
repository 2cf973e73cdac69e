#include "dashboard/api.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "dashboard/test_util.h"

namespace virga::dash {
namespace {

using testing::FakeStatus;

JobEntry Entry(const nlohmann::json& status, bool alive) {
  JobEntry e;
  e.job_id = status["job_id"];
  e.state = status["state"];
  e.pid = status["pid"];
  e.alive = alive;
  e.status_json = status.dump();
  return e;
}

TEST(DashboardApi, JobIdsThatCannotLeaveTheRegistry) {
  EXPECT_TRUE(ValidJobId("job-20240101-120000-abc123"));
  EXPECT_TRUE(ValidJobId("a.b_c-D9"));
  EXPECT_FALSE(ValidJobId(""));
  EXPECT_FALSE(ValidJobId("."));
  EXPECT_FALSE(ValidJobId(".."));
  EXPECT_FALSE(ValidJobId("../etc"));
  EXPECT_FALSE(ValidJobId("a/b"));
  EXPECT_FALSE(ValidJobId("a%2Fb"));
  EXPECT_FALSE(ValidJobId("a b"));
  EXPECT_FALSE(ValidJobId(std::string(101, 'a')));
  EXPECT_TRUE(ValidJobId(std::string(100, 'a')));
}

TEST(DashboardApi, DisplayState) {
  JobEntry e;
  e.state = "running";
  e.alive = true;
  EXPECT_EQ(DisplayState(e, false), "running");
  EXPECT_EQ(DisplayState(e, true), "killing");
  e.alive = false;
  EXPECT_EQ(DisplayState(e, false), "orphaned");
  e.state = "killed";
  EXPECT_EQ(DisplayState(e, true), "killed");
  e.state = "";
  EXPECT_EQ(DisplayState(e, false), "unknown");
}

TEST(DashboardApi, SummaryRowHasTheTableColumns) {
  ApiOptions o;
  const JobEntry e = Entry(FakeStatus("j1", "running", getpid(), 10, 0.6), true);
  const nlohmann::json row = JobSummary(e, o, /*history=*/false);
  EXPECT_EQ(row["job_id"], "j1");
  EXPECT_EQ(row["state"], "running");
  EXPECT_EQ(row["params"]["optimizer"], "ftrl");
  EXPECT_EQ(row["workers_alive"], 2);
  EXPECT_EQ(row["workers_launched"], 3);
  EXPECT_EQ(row["workers_failed"], 1);
  EXPECT_NEAR(row["samples_per_second"].get<double>(), 1000, 1e-9);  // recent: 1000 rows/s
  EXPECT_NEAR(row["updates_per_second"].get<double>(), 100, 1e-9);
  EXPECT_NEAR(row["bytes_per_sample"].get<double>(), 126.5, 1e-9);  // the workers' traffic
  EXPECT_NEAR(row["test_logloss"].get<double>(), 0.51, 1e-9);
  EXPECT_NEAR(row["cost_usd"].get<double>(), 0.003, 1e-12);
  EXPECT_FALSE(row.contains("history"));
}

TEST(DashboardApi, AFailedCheckpointIsShown) {
  ApiOptions o;
  nlohmann::json s = FakeStatus("j1", "running", getpid(), 10, 0.6);
  nlohmann::json row = JobSummary(Entry(s, true), o, false);
  EXPECT_EQ(row["checkpoints_failed"], 0);
  EXPECT_EQ(row["checkpoint_error"], "");
  s["checkpoints"] = {{"written", 1}, {"failed", 2}};
  s["servers"] = nlohmann::json::array(
      {{{"address", "h:1"}, {"stats", {{"checkpoints", {{"last_error", ""}}}}}},
       {{"address", "h:2"}, {"stats", {{"checkpoints", {{"last_error", "IO error: disk full"}}}}}}});
  row = JobSummary(Entry(s, true), o, false);
  EXPECT_EQ(row["checkpoints_failed"], 2);
  EXPECT_EQ(row["checkpoint_error"], "h:2: IO error: disk full");
}

// The row follows the model's primary metric; a status without one (an older
// job) is a logloss job.
TEST(DashboardApi, RowFollowsThePrimaryMetric) {
  ApiOptions o;
  nlohmann::json s = FakeStatus("mf1", "running", getpid(), 3, 1.1);
  s["model"] = "mf";
  s["metric"] = "rmse";
  s["test_metric"] = 0.93;
  s["best_metric"] = 0.92;
  s.erase("test_logloss");
  s.erase("best_logloss");
  s["history_fields"][3] = "test_rmse";
  const nlohmann::json row = JobSummary(Entry(s, true), o, /*history=*/true);
  EXPECT_EQ(row["metric"], "rmse");
  EXPECT_NEAR(row["test_metric"].get<double>(), 0.93, 1e-12);
  EXPECT_NEAR(row["best_metric"].get<double>(), 0.92, 1e-12);
  EXPECT_TRUE(row["test_logloss"].is_null());
  EXPECT_NEAR(row["history"]["loss"].back().get<double>(), 1.08, 1e-9);  // the curve: rmse
  const nlohmann::json old = JobSummary(Entry(FakeStatus("j1", "done", getpid(), 3, 0.6), true),
                                        o, false);
  EXPECT_EQ(old["metric"], "logloss");
  EXPECT_NEAR(old["test_metric"].get<double>(), 0.58, 1e-9);
}

TEST(DashboardApi, EndedJobShowsNoLiveWorkersAndAverageRates) {
  ApiOptions o;
  const JobEntry e = Entry(FakeStatus("j1", "killed", getpid(), 4, 0.6), true);
  const nlohmann::json row = JobSummary(e, o, false);
  EXPECT_EQ(row["state"], "killed");
  EXPECT_EQ(row["workers_alive"], 0);
  EXPECT_NEAR(row["updates_per_second"].get<double>(), 100, 1e-9);  // 400 updates in 4 s
}

TEST(DashboardApi, UnevaluatedJobHasNoLoss) {
  ApiOptions o;
  const JobEntry e = Entry(FakeStatus("j0", "starting", getpid(), 0, 0.6), true);
  const nlohmann::json row = JobSummary(e, o, true);
  EXPECT_TRUE(row["test_logloss"].is_null());
  EXPECT_TRUE(row["best_logloss"].is_null());
  EXPECT_TRUE(row["history"]["t"].empty());
}

TEST(DashboardApi, HistoryIsThinnedKeepsTheLastPointAndProratesCost) {
  ApiOptions o;
  o.max_history_points = 10;
  const JobEntry e = Entry(FakeStatus("j1", "running", getpid(), 1000, 0.6), true);
  const nlohmann::json h = JobSummary(e, o, true)["history"];
  ASSERT_LE(h["t"].size(), 10u);
  ASSERT_GE(h["t"].size(), 9u);
  EXPECT_EQ(h["t"].size(), h["loss"].size());
  EXPECT_EQ(h["t"].size(), h["cost"].size());
  EXPECT_DOUBLE_EQ(h["t"].front().get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(h["t"].back().get<double>(), 1000.0);
  EXPECT_NEAR(h["cost"].back().get<double>(), 0.003, 1e-12);
  EXPECT_NEAR(h["cost"].front().get<double>(), 0.003 / 1000, 1e-12);
  for (size_t i = 1; i < h["t"].size(); ++i) EXPECT_GT(h["t"][i], h["t"][i - 1]);
}

TEST(DashboardApi, JobsJsonCapsTheListAndSurvivesGarbage) {
  ApiOptions o;
  o.max_jobs = 2;
  std::vector<JobEntry> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(Entry(FakeStatus("j" + std::to_string(i), "done", 0, 3, 0.6), false));
  }
  jobs[1].status_json = "{not json";
  const nlohmann::json j = JobsJson(jobs, o, true);
  ASSERT_EQ(j["jobs"].size(), 2u);
  EXPECT_EQ(j["jobs_total"], 3);
  EXPECT_EQ(j["jobs"][1]["job_id"], "j1");
  EXPECT_TRUE(j["jobs"][1]["test_logloss"].is_null());
}

TEST(DashboardApi, DetailCarriesWorkersServersAndRates) {
  ApiOptions o;
  RateTracker rates;
  rates.Observe(FakeStatus("j1", "running", getpid(), 5, 0.6));
  rates.Observe(FakeStatus("j1", "running", getpid(), 7, 0.6));  // 2 s later, +200 requests
  const JobEntry e = Entry(FakeStatus("j1", "running", getpid(), 7, 0.6), true);
  const nlohmann::json d = JobDetailJson(e, o, rates);
  EXPECT_EQ(d["status"]["live_workers"][0]["iteration"]["pull_us"], 20);
  EXPECT_EQ(d["status"]["servers"][0]["stats"]["tables"][0]["name"], "j1.model");
  EXPECT_FALSE(d["status"].contains("history"));
  EXPECT_EQ(d["summary"]["history"]["t"].size(), 7u);
  EXPECT_NEAR(d["server_rates"]["127.0.0.1:4000"].get<double>(), 100, 1e-9);
}

TEST(DashboardApi, RateTrackerNeedsTwoSnapshots) {
  RateTracker rates;
  EXPECT_LT(rates.RequestsPerSecond("127.0.0.1:4000"), 0);
  rates.Observe(FakeStatus("j1", "running", getpid(), 5, 0.6));
  EXPECT_LT(rates.RequestsPerSecond("127.0.0.1:4000"), 0);
  rates.Observe(FakeStatus("j1", "running", getpid(), 5, 0.6));  // same snapshot again
  EXPECT_LT(rates.RequestsPerSecond("127.0.0.1:4000"), 0);
  rates.Observe(FakeStatus("j2", "running", getpid(), 6, 0.6));
  EXPECT_NEAR(rates.RequestsPerSecond("127.0.0.1:4000"), 100, 1e-9);
}

TEST(DashboardApi, MetricsText) {
  ApiOptions o;
  RateTracker rates;
  nlohmann::json s1 = FakeStatus("j1", "running", getpid(), 10, 0.6);
  s1["servers"][0]["stats"]["tables"][0]["name"] = "we\"ird\\name";
  std::vector<JobEntry> jobs = {Entry(s1, true),
                                Entry(FakeStatus("j2", "killed", getpid(), 3, 0.7), true)};
  rates.Observe(FakeStatus("j1", "running", getpid(), 8, 0.6));
  rates.Observe(s1);
  const std::string m = MetricsText(jobs, o, rates);
  auto has = [&](const std::string& line) {
    EXPECT_NE(m.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << m;
  };
  has("virga_jobs{state=\"running\"} 1");
  has("virga_jobs{state=\"killed\"} 1");
  has("virga_jobs{state=\"killing\"} 0");
  has("virga_job_running{job=\"j1\"} 1");
  has("virga_job_running{job=\"j2\"} 0");
  has("virga_job_workers_alive{job=\"j1\"} 2");
  has("virga_job_workers_alive{job=\"j2\"} 0");
  has("virga_job_samples_per_second{job=\"j1\"} 1000");
  has("virga_job_test_logloss{job=\"j1\"} 0.51000000000000001");
  has("virga_job_iteration_phase_seconds{job=\"j1\",phase=\"pull\"} 2.0000000000000002e-05");
  has("virga_server_requests_total{server=\"127.0.0.1:4000\"} 6000");
  has("virga_server_requests_per_second{server=\"127.0.0.1:4000\"} 100");
  has("virga_server_requests_by_opcode_total{server=\"127.0.0.1:4000\",opcode=\"3\"} 4000");
  has("virga_server_table_rows{server=\"127.0.0.1:4000\",table=\"we\\\"ird\\\\name\"} 10");
  has("# TYPE virga_job_test_logloss gauge");
  has("# TYPE virga_server_requests_total counter");
  // Each family's HELP and TYPE once, before its samples.
  EXPECT_EQ(m.find("# TYPE virga_job_test_logloss"), m.rfind("# TYPE virga_job_test_logloss"));
  EXPECT_LT(m.find("# TYPE virga_job_test_logloss"), m.find("virga_job_test_logloss{"));
  EXPECT_EQ(m.find("nan"), std::string::npos);
}

TEST(DashboardApi, EscapeLabel) {
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeLabel("plain"), "plain");
}

}  // namespace
}  // namespace virga::dash
