// Faults of the processes around a training job (docs/training.md, "Faults"):
// a driver SIGKILLed, workers SIGSTOPped, workers SIGKILLed as they start.
// End to end with real `virga` processes (VIRGA_BINARY).
#include <dirent.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "virga/datagen.h"
#include "virga/dataset.h"
#include "virga/ingest.h"
#include "virga/train.h"

namespace virga {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool Eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// Live (not zombie) processes whose command line (arguments joined by NULs)
// contains `needle`.
std::vector<int> Pids(const std::string& needle) {
  std::vector<int> pids;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = ::readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
    std::string line((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    if (line.find(needle) == std::string::npos) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(stat, s);
    const size_t paren = s.rfind(')');
    if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'Z') continue;
    pids.push_back(pid);
  }
  ::closedir(proc);
  return pids;
}

// The local backend's functions (`virga worker --payload <work_dir>/fn-N.json`).
std::vector<int> WorkerPids(const std::string& work_dir) { return Pids(work_dir + "/fn-"); }

// The server process of job `job` (`virga server ... --name <job>`).
int ServerPid(const std::string& job) {
  const std::vector<int> pids = Pids(std::string("--name\0", 7) + job + std::string("\0", 1));
  return pids.size() == 1 ? pids[0] : 0;
}

class SurviveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::temp_directory_path() /
                           ("virga-survive-test-" + std::to_string(getpid())));
    fs::remove_all(*dir_);  // a run that died with this pid left its files
    fs::create_directories(*dir_);
    CriteoGenOptions g;
    g.rows = 20000;
    g.seed = 5;
    g.out_path = *dir_ + "/d.tsv";
    ASSERT_TRUE(GenerateCriteo(g).ok());
    auto store = ObjectStore::Open(Uri());
    ASSERT_TRUE(store.ok());
    IngestOptions io;
    io.format = Format::kCriteo;
    io.inputs = {g.out_path};
    io.dataset = "d";
    io.rows_per_partition = 2048;
    auto r = Ingest(**store, io);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string Uri() { return "file://" + *dir_ + "/store"; }
  // A job whose functions keep their files in <dir>/<name>-fns.
  static TrainOptions Options(const std::string& name) {
    TrainOptions o;
    o.store = Uri();
    o.dataset = "d";
    o.workers = 2;
    o.job_id = name;
    o.backend_config.settings["worker_binary"] = VIRGA_BINARY;
    o.backend_config.settings["work_dir"] = WorkDir(name);
    o.eval_interval_seconds = 0.2;
    o.registry_dir = *dir_ + "/jobs";
    return o;
  }
  static std::string WorkDir(const std::string& name) { return *dir_ + "/" + name + "-fns"; }
  static std::string* dir_;
};
std::string* SurviveTest::dir_ = nullptr;

TEST_F(SurviveTest, DriverSigkillTakesItsWorkersAlongAndIsListedOrphaned) {
  const std::string work_dir = WorkDir("orphan");
  const pid_t driver = ::fork();
  ASSERT_GE(driver, 0);
  if (driver == 0) {
    ::setenv("VIRGA_HOME", dir_->c_str(), 1);
    const std::string store = Uri();
    ::execl(VIRGA_BINARY, VIRGA_BINARY, "train", "--store", store.c_str(), "--dataset", "d",
            "--epochs", "1000", "--workers", "2", "--quiet", "--job-id", "orphan", "--backend",
            "local", "--local-worker-binary", VIRGA_BINARY, "--local-work-dir", work_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::vector<int> workers;
  const bool started = Eventually([&] {
    workers = WorkerPids(work_dir);
    return workers.size() == 2;
  }, 30s);
  if (!started) ::kill(driver, SIGKILL);
  ASSERT_TRUE(started);
  // Training: both workers beat on the server.
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(::kill(driver, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(driver, &status, 0), driver);
  const auto t0 = Clock::now();
  EXPECT_TRUE(Eventually([&] { return WorkerPids(work_dir).empty(); }, 5s));
  const double gone_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("workers gone %.3f s after the driver's SIGKILL\n", gone_s);
  EXPECT_LT(gone_s, 5.0);

  auto jobs = ListJobs(*dir_ + "/jobs");
  ASSERT_TRUE(jobs.ok());
  bool listed = false;
  for (const JobEntry& e : *jobs) {
    if (e.job_id != "orphan") continue;
    listed = true;
    EXPECT_EQ(e.state, "orphaned");
    EXPECT_FALSE(e.alive);
  }
  EXPECT_TRUE(listed);
  // No file with the job's token is readable by others.
  size_t files = 0;
  for (const auto& f : fs::directory_iterator(work_dir)) {
    struct stat st {};
    ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << f.path();
    ++files;
  }
  EXPECT_GE(files, 2u);
}

TEST_F(SurviveTest, StoppedWorkersAreReplaced) {
  TrainOptions o = Options("stopped");
  o.epochs = 1000;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  Result<TrainResult> r = Status::Internal("not run");
  std::thread runner([&] { r = (*job)->Run(); });
  std::vector<int> stopped;
  // Both workers past their start-up, i.e. beating (every 500 ms): a worker
  // stopped before its first heartbeat counts as starting (start_timeout,
  // 30 s), not as hung, and a slow (sanitized) start can take a while.
  std::map<int, Clock::time_point> first_seen;
  const bool started = Eventually([&] {
    stopped = WorkerPids(WorkDir("stopped"));
    const auto now = Clock::now();
    bool settled = stopped.size() == 2;
    for (int pid : stopped) settled = settled && now - first_seen.try_emplace(pid, now).first->second >= 3s;
    return settled && (*job)->progress().samples > 0;
  }, 30s);
  std::set<int> old(stopped.begin(), stopped.end());
  if (started) {
    for (int pid : stopped) ::kill(pid, SIGSTOP);
  }
  const auto t0 = Clock::now();
  // Both slots run fresh (unstopped) functions again.
  const bool replaced = started && Eventually([&] {
    size_t fresh = 0;
    for (int pid : WorkerPids(WorkDir("stopped"))) fresh += old.count(pid) == 0;
    return fresh == 2;
  }, 15s);
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  const uint64_t samples_then = (*job)->progress().samples;
  const bool progressing = replaced && Eventually([&] {
    return (*job)->progress().samples > samples_then;
  }, 15s);
  (*job)->Kill();
  runner.join();
  for (int pid : stopped) ::kill(pid, SIGKILL);  // if the job failed to
  ASSERT_TRUE(started);
  std::printf("two SIGSTOPped workers replaced after %.3f s\n", took);
  EXPECT_TRUE(replaced);
  EXPECT_LT(took, 10.0);
  EXPECT_TRUE(progressing);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "killed");
  EXPECT_EQ(r->workers_hung, 2u);
}

TEST_F(SurviveTest, KillsOfStartingWorkersDoNotFailTheJob) {
  // Every function is SIGKILLed (from outside the backend) as it appears,
  // five times in a row: more than the 3 x workers failures without progress
  // that end a job whose functions cannot work. This job can: it finishes.
  TrainOptions o = Options("coldkills");
  o.workers = 1;
  o.epochs = 1;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  Result<TrainResult> r = Status::Internal("not run");
  std::thread runner([&] { r = (*job)->Run(); });
  std::set<int> killed;
  Eventually([&] {
    for (int pid : WorkerPids(WorkDir("coldkills"))) {
      if (killed.insert(pid).second) ::kill(pid, SIGKILL);
    }
    return killed.size() >= 5;
  }, 30s);
  runner.join();
  EXPECT_GE(killed.size(), 5u);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->epochs, 1u);
  EXPECT_GE(r->workers_failed, 5u);
}

TEST_F(SurviveTest, CheckpointsAreCountedAndAFailureIsSurfaced) {
  // Written: a job with checkpoints every second.
  TrainOptions o = Options("ckptok");
  o.epochs = 1000;
  o.time_limit_seconds = 2.5;
  o.checkpoint_interval_seconds = 1;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "time_limit");
  EXPECT_GE(r->checkpoints_written, 1u);
  EXPECT_EQ(r->checkpoints_failed, 0u);
  EXPECT_EQ(r->checkpoint_error, "");

  // Failed: a file where the job's checkpoint directory must go.
  fs::create_directories(*dir_ + "/store/checkpoints");
  std::ofstream(*dir_ + "/store/checkpoints/ckptfail") << "in the way";
  o = Options("ckptfail");
  o.epochs = 1000;
  o.time_limit_seconds = 2.5;
  o.checkpoint_interval_seconds = 1;
  job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(r->checkpoints_failed, 1u);
  EXPECT_EQ(r->checkpoints_written, 0u);
  EXPECT_NE(TrainResultToJson(*r).find("\"checkpoints_failed\""), std::string::npos);
  // With the error's text (a directory cannot be made where a file is).
  EXPECT_NE(r->checkpoint_error.find("IO error"), std::string::npos) << r->checkpoint_error;
  EXPECT_NE(TrainResultToJson(*r).find("\"checkpoint_error\": \"IO error"), std::string::npos);
  // The registry entry (what the dashboard reads) has the count and the servers' error.
  std::ifstream f(*dir_ + "/jobs/ckptfail/status.json");
  std::string status((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(status.find("\"checkpoints\":{\"failed\":"), std::string::npos) << status;
  EXPECT_NE(status.find("\"last_error\":\"IO error: "), std::string::npos) << status;
  // And the workers' traffic per trained row (also in the result's "traffic").
  const auto j = nlohmann::json::parse(status, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status;
  ASSERT_TRUE(j["bytes_per_sample"].is_number()) << status;
  EXPECT_GT(j["bytes_per_sample"].get<double>(), 1.0);
  EXPECT_LT(j["bytes_per_sample"].get<double>(), 10'000.0);
  fs::remove(*dir_ + "/store/checkpoints/ckptfail");
}

TEST_F(SurviveTest, ServerKilledTwiceTheJobCompletes) {
  // The server runs as a child process with a checkpoint every second; it is
  // SIGKILLed twice mid-job. The driver restarts it from its last checkpoint,
  // the workers reconnect, every item of every epoch is counted and the loss
  // matches a fault-free run.
  auto options = [](const std::string& name) {
    TrainOptions o = Options(name);
    o.epochs = 60;  // a job of a few seconds whose loss varies little from run to run
    o.server_process = true;
    o.server_binary = VIRGA_BINARY;
    o.checkpoint_interval_seconds = 1;
    o.seed = 11;
    return o;
  };
  auto ref_job = TrainJob::Create(options("srvref"));
  ASSERT_TRUE(ref_job.ok()) << ref_job.status().ToString();
  auto ref = (*ref_job)->Run();
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  ASSERT_EQ(ref->state, "done");
  const uint64_t total = ref->samples;

  auto job = TrainJob::Create(options("srvkill"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  Result<TrainResult> r = Status::Internal("not run");
  std::thread runner([&] { r = (*job)->Run(); });
  int killed = 0;
  int last_pid = 0;
  Eventually([&] {
    const TrainProgress p = (*job)->progress();
    const int pid = ServerPid("srvkill");
    // At a fifth of the work, then at two fifths of it on the replacement
    // once the driver has counted it as restarted (a server killed while it
    // starts is a failed start, retried, not a restart).
    if (pid != 0 && pid != last_pid && p.server_restarts == static_cast<uint64_t>(killed) &&
        p.samples > total * (killed + 1) / 5) {
      ::kill(pid, SIGKILL);
      last_pid = pid;
      ++killed;
    }
    return killed == 2;
  }, 60s);
  runner.join();
  EXPECT_EQ(killed, 2);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->server_restarts, 2u);
  EXPECT_EQ(r->epochs, 60u);
  for (uint32_t n : r->items_processed_per_epoch) EXPECT_EQ(n, r->items_per_epoch);
  std::printf("fault-free %.2f s logloss %.4f; server killed twice %.2f s logloss %.4f (%+.2f%%)\n",
              ref->train_seconds, ref->test_logloss, r->train_seconds, r->test_logloss,
              100 * (r->test_logloss / ref->test_logloss - 1));
  EXPECT_NEAR(r->test_logloss, ref->test_logloss, 0.01 * ref->test_logloss);
  const int server = ServerPid("srvkill");
  EXPECT_NE(server, 0);
  (*job).reset();  // the job's end stops its server
  EXPECT_NE(::kill(server, 0), 0);
}

TEST_F(SurviveTest, ARestartedServerNeverComesBackEmpty) {
  // The server dies while its checkpoints cannot be seen (a file where their
  // directory was: the chaos test's disk fault). A restart then finds no
  // checkpoint: it must not serve an empty state (the job's table, queue and
  // counts gone) but exit, and the driver tries again until the checkpoints
  // are back; the job then completes with every item counted.
  TrainOptions o = Options("srvhide");
  o.epochs = 60;
  o.server_process = true;
  o.server_binary = VIRGA_BINARY;
  o.checkpoint_interval_seconds = 1;
  o.time_limit_seconds = 60;
  auto job = TrainJob::Create(o);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  Result<TrainResult> r = Status::Internal("not run");
  std::thread runner([&] { r = (*job)->Run(); });
  const std::string ckpt = *dir_ + "/store/checkpoints/srvhide";
  const bool training = Eventually([&] { return (*job)->progress().samples > 0; }, 30s);
  const int pid = ServerPid("srvhide");
  if (training && pid != 0) {
    fs::rename(ckpt, ckpt + ".hidden");
    std::ofstream(ckpt) << "in the way";
    ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(2s);  // restarts are tried, and refused
    fs::remove(ckpt);
    fs::rename(ckpt + ".hidden", ckpt);
  }
  runner.join();
  ASSERT_TRUE(training);
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->server_restarts, 1u);
  EXPECT_EQ(r->epochs, 60u);
  for (uint32_t n : r->items_processed_per_epoch) EXPECT_EQ(n, r->items_per_epoch);
}

TEST_F(SurviveTest, ResumeFinishesAJobWhoseDriverWasKilled) {
  // A `virga train` with checkpoints is SIGKILLed after its first checkpoint;
  // TrainOptions::resume (virga train --resume) finishes it from there with
  // the loss of an uninterrupted run.
  // 200 epochs (2-3 s) with a checkpoint every 0.2 s: the driver is killed
  // well before the end whatever the machine's speed.
  TrainOptions o = Options("resref");
  o.epochs = 200;
  o.seed = 11;
  o.checkpoint_interval_seconds = 0.2;
  auto ref_job = TrainJob::Create(o);
  ASSERT_TRUE(ref_job.ok()) << ref_job.status().ToString();
  auto ref = (*ref_job)->Run();
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();

  const pid_t driver = ::fork();
  ASSERT_GE(driver, 0);
  if (driver == 0) {
    ::setenv("VIRGA_HOME", dir_->c_str(), 1);
    const std::string store = Uri(), work_dir = WorkDir("resumed");
    ::execl(VIRGA_BINARY, VIRGA_BINARY, "train", "--store", store.c_str(), "--dataset", "d",
            "--epochs", "200", "--seed", "11", "--workers", "2", "--quiet", "--job-id", "resumed",
            "--checkpoint-interval", "0.2", "--eval-interval", "0.2", "--backend", "local",
            "--local-worker-binary", VIRGA_BINARY, "--local-work-dir", work_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const bool checkpointed = Eventually([&] {
    std::ifstream f(*dir_ + "/jobs/resumed/status.json");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return s.find("\"checkpoints\":{\"failed\":0,\"written\":") != std::string::npos &&
           s.find("\"checkpoints\":{\"failed\":0,\"written\":0") == std::string::npos;
  }, 30s);
  ::kill(driver, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(driver, &status, 0), driver);
  ASSERT_TRUE(checkpointed) << "no checkpoint written by the driver within 30 s";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job ended before it could be killed";
  EXPECT_TRUE(Eventually([&] { return WorkerPids(WorkDir("resumed")).empty(); }, 5s));

  TrainOptions r_opt;
  r_opt.store = Uri();
  r_opt.job_id = "resumed";
  r_opt.resume = true;
  r_opt.backend_config.settings["worker_binary"] = VIRGA_BINARY;
  r_opt.registry_dir = *dir_ + "/jobs";
  auto job = TrainJob::Create(r_opt);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ((*job)->options().dataset, "d");  // from the first run's options
  EXPECT_EQ((*job)->options().epochs, 200u);
  auto r = (*job)->Run();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state, "done");
  EXPECT_EQ(r->epochs, 200u);
  for (uint32_t n : r->items_processed_per_epoch) EXPECT_EQ(n, r->items_per_epoch);
  std::printf("uninterrupted logloss %.4f; resumed logloss %.4f (%+.2f%%)\n", ref->test_logloss,
              r->test_logloss, 100 * (r->test_logloss / ref->test_logloss - 1));
  EXPECT_NEAR(r->test_logloss, ref->test_logloss, 0.01 * ref->test_logloss);

  // A job without checkpoints cannot be resumed, and says why.
  r_opt.job_id = "never-ran";
  auto none = TrainJob::Create(r_opt);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("can be resumed"), std::string::npos)
      << none.status().ToString();
}

}  // namespace
}  // namespace virga
