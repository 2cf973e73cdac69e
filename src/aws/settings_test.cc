#include "aws/settings.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "common/random_suffix.h"

namespace virga::aws {
namespace {

namespace fs = std::filesystem;

// Test keys only; still, no assertion prints a secret: they compare with
// EXPECT_TRUE(a == b) and search messages with find().
constexpr const char* kEnvSecret = "envSECRETenvSECRETenvSECRETenvSECRET0001";
constexpr const char* kFileSecret = "fileSECRETfileSECRETfileSECRETfileSECRE2";
constexpr const char* kWorkSecret = "workSECRETworkSECRETworkSECRETworkSECRE3";
constexpr const char* kConfigSecret = "confSECRETconfSECRETconfSECRETconfSECRE4";
constexpr const char* kToken = "TOKENtokenTOKENtokenTOKEN5";

class ResolveSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("virga-aws-test-" + RandomSuffix());
    fs::create_directories(dir_ / ".aws");
    env_["HOME"] = dir_.string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& relative, const std::string& text) {
    const fs::path p = dir_ / relative;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string CredentialsPath() const { return (dir_ / ".aws/credentials").string(); }
  std::string ConfigPath() const { return (dir_ / ".aws/config").string(); }

  // The usual files: default and work in credentials, regions and endpoints in config.
  void WriteUsualFiles() {
    Write(".aws/credentials", std::string("[default]\naws_access_key_id = AKIDFILE\n") +
                                  "aws_secret_access_key = " + kFileSecret + "\n\n[work]\n" +
                                  "aws_access_key_id=AKIDWORK\naws_secret_access_key=" +
                                  kWorkSecret + "\naws_session_token=" + kToken + "\n");
    Write(".aws/config",
          std::string("[default]\nregion = eu-west-1\n\n[profile work]\nregion = ap-south-1\n") +
              "endpoint_url = http://127.0.0.1:9000/\n\n[profile conf]\nregion = sa-east-1\n" +
              "aws_access_key_id = AKIDCONF\naws_secret_access_key = " + kConfigSecret + "\n");
  }

  Result<Settings> Resolve(std::string_view service = "s3") {
    std::map<std::string, std::string> env = env_;
    return ResolveSettings(service, [env](const char* name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    });
  }

  // True if `message` contains none of the test secrets or tokens.
  static bool Clean(const std::string& message) {
    for (const char* s : {kEnvSecret, kFileSecret, kWorkSecret, kConfigSecret, kToken}) {
      if (message.find(s) != std::string::npos) return false;
    }
    return true;
  }

  fs::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ResolveSettingsTest, EnvironmentWinsOverTheProfile) {
  WriteUsualFiles();
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  env_["AWS_SESSION_TOKEN"] = kToken;
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIDENV");
  EXPECT_TRUE(s->credentials.secret_access_key == kEnvSecret) << "secret differs (not printed)";
  EXPECT_TRUE(s->credentials.session_token == kToken) << "token differs (not printed)";
  EXPECT_EQ(s->credentials_source, "environment");
  EXPECT_EQ(s->profile, "default");
  EXPECT_EQ(s->region, "eu-west-1");  // the profile still gives the region
  EXPECT_EQ(s->endpoint, "");
}

TEST_F(ResolveSettingsTest, DefaultProfileFromTheCredentialsFile) {
  WriteUsualFiles();
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIDFILE");
  EXPECT_TRUE(s->credentials.secret_access_key == kFileSecret) << "secret differs (not printed)";
  EXPECT_TRUE(s->credentials.session_token.empty());
  EXPECT_EQ(s->credentials_source, "profile default in " + CredentialsPath());
}

TEST_F(ResolveSettingsTest, AwsProfileSelectsTheSections) {
  WriteUsualFiles();
  env_["AWS_PROFILE"] = "work";
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->profile, "work");
  EXPECT_EQ(s->credentials.access_key_id, "AKIDWORK");
  EXPECT_TRUE(s->credentials.secret_access_key == kWorkSecret) << "secret differs (not printed)";
  EXPECT_TRUE(s->credentials.session_token == kToken) << "token differs (not printed)";
  EXPECT_EQ(s->region, "ap-south-1");
  EXPECT_EQ(s->endpoint, "http://127.0.0.1:9000");  // trailing '/' dropped
}

TEST_F(ResolveSettingsTest, ConfigFileCredentialsWhenTheCredentialsFileLacksTheProfile) {
  WriteUsualFiles();
  env_["AWS_PROFILE"] = "conf";
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIDCONF");
  EXPECT_EQ(s->credentials_source, "profile conf in " + ConfigPath());
  EXPECT_EQ(s->region, "sa-east-1");
}

TEST_F(ResolveSettingsTest, FileVariablesAndTildeOverrideTheDefaultPaths) {
  const std::string creds = Write("creds.ini",
                                  "[default]\naws_access_key_id = AKIDALT\n"
                                  "aws_secret_access_key = alt\n");
  Write("conf.ini", "[profile default]\nregion = us-west-2\n");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = creds;
  env_["AWS_CONFIG_FILE"] = "~/conf.ini";
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->credentials.access_key_id, "AKIDALT");
  EXPECT_EQ(s->credentials_source, "profile default in " + creds);
  EXPECT_EQ(s->region, "us-west-2");
}

TEST_F(ResolveSettingsTest, RegionSourcesInOrder) {
  WriteUsualFiles();
  env_["AWS_REGION"] = "us-east-2";
  env_["AWS_DEFAULT_REGION"] = "ca-central-1";
  EXPECT_EQ(Resolve()->region, "us-east-2");
  env_.erase("AWS_REGION");
  EXPECT_EQ(Resolve()->region, "ca-central-1");
  env_["AWS_DEFAULT_REGION"] = "";  // empty counts as unset
  EXPECT_EQ(Resolve()->region, "eu-west-1");
  Write(".aws/config", "[profile other]\nregion = eu-north-1\n");
  EXPECT_EQ(Resolve()->region, "us-east-1");
}

TEST_F(ResolveSettingsTest, EndpointOverridePrecedence) {
  WriteUsualFiles();
  env_["AWS_PROFILE"] = "work";  // endpoint_url http://127.0.0.1:9000/ in its config
  EXPECT_EQ(Resolve("lambda")->endpoint, "http://127.0.0.1:9000");
  env_["AWS_ENDPOINT_URL"] = "http://localhost:1000";
  EXPECT_EQ(Resolve("s3")->endpoint, "http://localhost:1000");
  env_["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:4568/";
  EXPECT_EQ(Resolve("s3")->endpoint, "http://127.0.0.1:4568");
  EXPECT_EQ(Resolve("lambda")->endpoint, "http://localhost:1000");
  env_["AWS_ENDPOINT_URL_LAMBDA"] = "https://lambda.example";
  EXPECT_EQ(Resolve("lambda")->endpoint, "https://lambda.example");

  env_["AWS_ENDPOINT_URL_S3"] = "127.0.0.1:4568";
  Result<Settings> bad = Resolve("s3");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("AWS_ENDPOINT_URL_S3"), std::string::npos);
}

TEST_F(ResolveSettingsTest, CaBundleFromTheEnvironmentThenTheProfile) {
  WriteUsualFiles();
  Write(".aws/config", "[profile work]\nca_bundle = /etc/ssl/work-ca.pem\n");
  env_["AWS_PROFILE"] = "work";
  EXPECT_EQ(Resolve()->ca_bundle, "/etc/ssl/work-ca.pem");
  env_["AWS_CA_BUNDLE"] = "/tmp/private-ca.pem";
  EXPECT_EQ(Resolve()->ca_bundle, "/tmp/private-ca.pem");
  env_.erase("AWS_CA_BUNDLE");
  env_.erase("AWS_PROFILE");
  EXPECT_EQ(Resolve()->ca_bundle, "");
}

TEST_F(ResolveSettingsTest, NoEndpointAndDefaultRegionWhenNothingIsSet) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  Result<Settings> s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->region, "us-east-1");
  EXPECT_EQ(s->endpoint, "");
  EXPECT_EQ(DefaultEndpoint("s3", s->region), "https://s3.us-east-1.amazonaws.com");
}

TEST_F(ResolveSettingsTest, MissingCredentialsSaysWhereItLookedAndNoSecret) {
  Write(".aws/config", std::string("[profile other]\naws_access_key_id = AKIDCONF\n") +
                           "aws_secret_access_key = " + kConfigSecret + "\n");
  env_["AWS_SESSION_TOKEN"] = kToken;
  Result<Settings> s = Resolve();
  ASSERT_FALSE(s.ok());
  const Status& st = s.status();
  EXPECT_EQ(st.code(), Status::Code::kUnauthenticated);
  EXPECT_TRUE(Clean(st.message())) << "the message holds a secret (not printed)";
  for (const std::string& part :
       {std::string("AWS_ACCESS_KEY_ID"), std::string("AWS_SECRET_ACCESS_KEY"),
        std::string("profile default"), CredentialsPath() + " (absent)", ConfigPath(),
        std::string("AWS_PROFILE")}) {
    EXPECT_NE(st.message().find(part), std::string::npos) << part << " not in: " << st.message();
  }
}

TEST_F(ResolveSettingsTest, HalfACredentialIsAnErrorThatNamesTheMissingHalf) {
  env_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  Result<Settings> s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_TRUE(Clean(s.status().message())) << "the message holds a secret (not printed)";
  EXPECT_EQ(s.status().message(),
            "environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");

  env_.erase("AWS_SECRET_ACCESS_KEY");
  Write(".aws/credentials", "[default]\naws_access_key_id = AKIDFILE\n");
  s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "profile default in " + CredentialsPath() +
                ": aws_access_key_id is set but aws_secret_access_key is not");
}

TEST_F(ResolveSettingsTest, MalformedIniNamesFileAndLineAndNoSecret) {
  Write(".aws/credentials",
        std::string("[default]\naws_access_key_id = AKIDFILE\n") + kFileSecret + "\n");
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  Result<Settings> s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_TRUE(Clean(s.status().message())) << "the message holds a secret (not printed)";
  EXPECT_EQ(s.status().message().rfind(CredentialsPath() + ":3: ", 0), 0u) << s.status().message();
}

TEST_F(ResolveSettingsTest, UnknownAwsProfileNamesTheProfileAndFiles) {
  WriteUsualFiles();
  env_["AWS_PROFILE"] = "nope";
  env_["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  env_["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
  Result<Settings> s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsInvalidArgument());
  EXPECT_EQ(s.status().message(), "AWS_PROFILE names profile nope, which is in neither " +
                                      CredentialsPath() + " nor " + ConfigPath());
}

TEST_F(ResolveSettingsTest, NoHomeAndNoFileVariables) {
  env_.erase("HOME");
  Result<Settings> s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("~/.aws/credentials ($HOME is not set)"), std::string::npos)
      << s.status().message();
}

TEST(ProcessEnv, ReadsTheProcessEnvironment) {
  ASSERT_EQ(::setenv("VIRGA_AWS_TEST_VARIABLE", "v1", 1), 0);
  EXPECT_EQ(ProcessEnv()("VIRGA_AWS_TEST_VARIABLE"), "v1");
  ::unsetenv("VIRGA_AWS_TEST_VARIABLE");
  EXPECT_EQ(ProcessEnv()("VIRGA_AWS_TEST_VARIABLE"), std::nullopt);
}

TEST(DefaultEndpoint, ServiceAndRegion) {
  EXPECT_EQ(DefaultEndpoint("s3", "us-east-1"), "https://s3.us-east-1.amazonaws.com");
  EXPECT_EQ(DefaultEndpoint("lambda", "eu-west-1"), "https://lambda.eu-west-1.amazonaws.com");
  EXPECT_EQ(DefaultEndpoint("s3", "cn-north-1"), "https://s3.cn-north-1.amazonaws.com.cn");
}

}  // namespace
}  // namespace virga::aws
