#include "lambda/invocation_child.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "lambda/lambda_event.h"

namespace virga::lambda {
namespace {

using namespace std::chrono_literals;

TEST(InvocationChild, ExitCodeOutputAndEnvironment) {
  ::setenv("VIRGA_TEST_UNSET_ME", "present", 1);
  ChildSpec spec;
  spec.env = {{"VIRGA_TEST_A", "alpha"}, {"VIRGA_TEST_UNSET_ME", ""}};
  spec.body = [] {
    const char* unset = std::getenv("VIRGA_TEST_UNSET_ME");
    std::printf("%s %s\n", std::getenv("VIRGA_TEST_A"), unset ? unset : "(unset)");
    std::fprintf(stderr, "to stderr\n");
    return 7;
  };
  Result<ChildOutcome> out = RunChild(spec);
  ::unsetenv("VIRGA_TEST_UNSET_ME");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_TRUE(WIFEXITED(out->wait_status));
  EXPECT_EQ(WEXITSTATUS(out->wait_status), 7);
  EXPECT_EQ(out->output, "alpha (unset)\n");
  EXPECT_EQ(out->stderr_tail, "to stderr\n");
  EXPECT_FALSE(out->killed_at_deadline);
  EXPECT_GT(out->wall_seconds, 0);
  EXPECT_GT(out->peak_rss_bytes, 0u);
}

TEST(InvocationChild, OutputCappedStderrTailKept) {
  ChildSpec spec;
  spec.body = [] {
    std::string chunk(1000, 'o');
    for (int i = 0; i < 1600; ++i) std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    for (int i = 0; i < 2000; ++i) std::fprintf(stderr, "line %04d\n", i);
    return 0;
  };
  Result<ChildOutcome> out = RunChild(spec);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->output.size(), kMaxOutputBytes);
  EXPECT_TRUE(out->output_truncated);
  EXPECT_EQ(out->stderr_tail.size(), kStderrTailBytes);
  EXPECT_TRUE(out->stderr_tail.ends_with("line 1999\n"));
}

TEST(InvocationChild, KilledWithItsGroupAtTheDeadline) {
  ChildSpec spec;
  spec.kill_at = std::chrono::steady_clock::now() + 300ms;
  spec.body = [] {
    pid_t helper = ::fork();
    if (helper == 0) {
      ::pause();
      ::_exit(0);
    }
    std::printf("%d\n", helper);
    std::fflush(stdout);
    ::pause();
    return 0;
  };
  Result<ChildOutcome> out = RunChild(spec);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(out->killed_at_deadline);
  ASSERT_TRUE(WIFSIGNALED(out->wait_status));
  EXPECT_EQ(WTERMSIG(out->wait_status), SIGKILL);
  EXPECT_GE(out->wall_seconds, 0.25);
  EXPECT_LT(out->wall_seconds, 2.0);
  // The helper it forked died with it (a zombie until init reaps it).
  const pid_t helper = std::atoi(out->output.c_str());
  ASSERT_GT(helper, 0);
  bool dead = false;
  for (int i = 0; i < 200 && !dead; ++i) {
    std::ifstream stat("/proc/" + std::to_string(helper) + "/stat");
    std::string pid, comm, state;
    dead = !(stat >> pid >> comm >> state) || state == "Z";
    if (!dead) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(dead);
}

TEST(InvocationChild, SignalDeathAndMemoryUse) {
  ChildSpec spec;
  spec.body = [] {
    const size_t bytes = 64u << 20;
    volatile char* p = static_cast<char*>(std::malloc(bytes));
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    p[bytes - 1] = 1;
    std::printf("%d\n", p[bytes - 1]);
    std::fflush(stdout);
    ::raise(SIGABRT);  // not SIGSEGV: sanitizer builds turn that into a report and exit 1
    return 0;
  };
  Result<ChildOutcome> out = RunChild(spec);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->killed_at_deadline);
  ASSERT_TRUE(WIFSIGNALED(out->wait_status));
  EXPECT_EQ(WTERMSIG(out->wait_status), SIGABRT);
  EXPECT_EQ(out->output, "1\n");
  EXPECT_GE(out->peak_rss_bytes, uint64_t{64} << 20);
}

TEST(InvocationChild, ExceptionIsExitOne) {
  ChildSpec spec;
  spec.body = []() -> int { throw std::runtime_error("boom"); };
  Result<ChildOutcome> out = RunChild(spec);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(WIFEXITED(out->wait_status));
  EXPECT_EQ(WEXITSTATUS(out->wait_status), 1);
  EXPECT_NE(out->stderr_tail.find("boom"), std::string::npos);
}

}  // namespace
}  // namespace virga::lambda
