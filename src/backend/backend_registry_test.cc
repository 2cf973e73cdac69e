// Backends by name: the registry, settings and environment
// (include/virga/backend.h, "Backends by name").
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "virga/backend.h"

namespace virga {
namespace {

using namespace std::chrono_literals;

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

BackendConfig Config(std::string name, std::map<std::string, std::string> settings = {}) {
  BackendConfig c;
  c.name = std::move(name);
  c.settings = std::move(settings);
  return c;
}

// Runs one function to its end; returns its stdout.
std::string RunOne(ComputeBackend& b) {
  auto id = b.Launch("{}", FunctionLimits{});
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  if (!id.ok()) return "";
  auto info = b.Wait(*id, 20s);
  EXPECT_TRUE(info.ok());
  if (!info.ok()) return "";
  EXPECT_EQ(info->state, FunctionState::kSucceeded) << info->reason << " " << info->error_tail;
  return info->output;
}

TEST(BackendRegistry, ListsLocalWithItsSettings) {
  auto backends = RegisteredBackends();
  ASSERT_FALSE(backends.empty());
  EXPECT_EQ(backends[0].name, "local");
  bool has_binary = false;
  for (const BackendSetting& s : backends[0].settings) {
    if (s.name == "worker_binary") has_binary = s.env == "VIRGA_BINARY";
    EXPECT_FALSE(s.help.empty()) << s.name;
  }
  EXPECT_TRUE(has_binary);
}

TEST(BackendRegistry, DefaultNameComesFromTheEnvironment) {
  {
    ScopedEnv env("VIRGA_BACKEND", nullptr);
    EXPECT_EQ(DefaultBackendName(), "local");
    EXPECT_TRUE(CheckBackendConfig({}).ok());
  }
  ScopedEnv env("VIRGA_BACKEND", "nosuch");
  EXPECT_EQ(DefaultBackendName(), "nosuch");
  Status s = CheckBackendConfig({});
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("'nosuch' (from $VIRGA_BACKEND)"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckBackendConfig(Config("local")).ok());  // a name given wins
}

TEST(BackendRegistry, UnknownNameListsTheKnownBackends) {
  BackendConfig c = Config("nosuch");
  Status s = CheckBackendConfig(c);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "unknown compute backend 'nosuch' (known: local, lambda)");
  auto b = MakeBackend(c);
  EXPECT_EQ(b.status().message(), s.message());
}

TEST(BackendRegistry, UnknownSettingListsTheBackendsSettings) {
  BackendConfig c = Config("local", {{"region", "eu-west-1"}});
  Status s = CheckBackendConfig(c);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("no setting 'region'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("worker_binary, worker_prefix"), std::string::npos) << s.message();
}

TEST(BackendRegistry, BadValuesNameTheSetting) {
  Status s = CheckBackendConfig(Config("local", {{"seed", "-3"}}));
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("'seed'"), std::string::npos) << s.message();
  s = CheckBackendConfig(Config("local", {{"memory_cap", "maybe"}}));
  EXPECT_NE(s.message().find("'memory_cap'"), std::string::npos) << s.message();
  EXPECT_TRUE(CheckBackendConfig(Config("local", {{"memory_cap", "false"}})).ok());
}

TEST(BackendRegistry, LocalSettingsShapeTheCommand) {
  // Each function runs: [prefix...] <worker_binary> worker --payload FILE.
  auto plain = MakeBackend(Config("local", {{"worker_binary", "/bin/echo"}}));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ((*plain)->name(), "local");
  EXPECT_EQ(RunOne(**plain).rfind("worker --payload ", 0), 0u);

  auto prefixed = MakeBackend(
      Config("", {{"worker_binary", "/bin/echo"}, {"worker_prefix", "/usr/bin/env A=1"}}));
  ASSERT_TRUE(prefixed.ok()) << prefixed.status().ToString();
  EXPECT_EQ(RunOne(**prefixed).rfind("worker --payload ", 0), 0u);
}

TEST(BackendRegistry, SettingsNotGivenComeFromTheirEnvironmentVariable) {
  ScopedEnv env("VIRGA_BINARY", "/bin/echo");
  auto b = MakeBackend({});
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(RunOne(**b).rfind("worker --payload ", 0), 0u);
  // A value given wins over the environment.
  auto given = MakeBackend(Config("", {{"worker_binary", "/bin/true"}}));
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(RunOne(**given), "");
}

}  // namespace
}  // namespace virga
