#include "backend/exit_status.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace virga::backend {
namespace {

using std::chrono::milliseconds;

constexpr int Exited(int code) { return code << 8; }  // as wait4() reports it
constexpr int Signaled(int sig) { return sig; }

TEST(ClassifyExit, ExitZeroSucceeds) {
  ExitOutcome o = ClassifyExit(Exited(0), StopCause::kNone, 100, milliseconds(1000), "");
  EXPECT_EQ(o.state, FunctionState::kSucceeded);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.reason, "exit 0");
}

TEST(ClassifyExit, NonZeroExitAndSignalsFail) {
  ExitOutcome o = ClassifyExit(Exited(3), StopCause::kNone, 100, milliseconds(1000), "boom");
  EXPECT_EQ(o.state, FunctionState::kFailed);
  EXPECT_EQ(o.reason, "exit 3");
  o = ClassifyExit(Signaled(SIGSEGV), StopCause::kNone, 100, milliseconds(1000), "");
  EXPECT_EQ(o.state, FunctionState::kFailed);
  EXPECT_EQ(o.term_signal, SIGSEGV);
  EXPECT_EQ(o.reason, "signal 11 (Segmentation fault)");
}

TEST(ClassifyExit, OurSignalsExplainADeathBySignal) {
  EXPECT_EQ(ClassifyExit(Signaled(SIGKILL), StopCause::kKill, 0, milliseconds(0), "").state,
            FunctionState::kKilled);
  ExitOutcome o = ClassifyExit(Signaled(SIGKILL), StopCause::kLifetime, 0, milliseconds(300), "");
  EXPECT_EQ(o.state, FunctionState::kTimedOut);
  EXPECT_EQ(o.reason, "lifetime 0.3 s reached");
  EXPECT_EQ(LifetimeReason(milliseconds(5000)), "lifetime 5 s reached");
  // It exited on its own before our signal landed: its own outcome stands.
  EXPECT_EQ(ClassifyExit(Exited(0), StopCause::kKill, 0, milliseconds(0), "").state,
            FunctionState::kSucceeded);
}

TEST(ClassifyExit, OutOfMemory) {
  ExitOutcome o =
      ClassifyExit(Exited(kExitOutOfMemory), StopCause::kNone, 200, milliseconds(0), "");
  EXPECT_EQ(o.state, FunctionState::kOutOfMemory);
  EXPECT_NE(o.reason.find("out of memory"), std::string::npos) << o.reason;
  o = ClassifyExit(Signaled(SIGABRT), StopCause::kNone, 200, milliseconds(0),
                   "terminate called after throwing an instance of 'std::bad_alloc'\n");
  EXPECT_EQ(o.state, FunctionState::kOutOfMemory);
  EXPECT_NE(o.reason.find("200 MB"), std::string::npos) << o.reason;
  EXPECT_EQ(ClassifyExit(Exited(1), StopCause::kNone, 200, milliseconds(0), "MemoryError\n").state,
            FunctionState::kOutOfMemory);
  // Without a cap the message alone is not the backend's business.
  EXPECT_EQ(ClassifyExit(Exited(1), StopCause::kNone, 0, milliseconds(0), "MemoryError\n").state,
            FunctionState::kFailed);
}

TEST(FunctionState, NamesAndTerminality) {
  EXPECT_STREQ(FunctionStateName(FunctionState::kTimedOut), "timed_out");
  EXPECT_FALSE(IsTerminal(FunctionState::kStarting));
  EXPECT_FALSE(IsTerminal(FunctionState::kRunning));
  EXPECT_TRUE(IsTerminal(FunctionState::kKilled));
  EXPECT_TRUE(IsTerminal(FunctionState::kOutOfMemory));
}

}  // namespace
}  // namespace virga::backend
