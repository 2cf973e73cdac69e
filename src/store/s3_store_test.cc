// The s3:// store against a real S3 implementation (s3rver, which checks
// SigV4 signatures), and through a fault-injecting proxy in front of it
// (tests/s3/fault_proxy.py). The conformance suite over s3:// is in
// object_store_test.cc.
#include "store/s3_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "store/s3_test_server.h"

namespace virga {
namespace {

using std::chrono::milliseconds;

using testing::Payload;

// The fault proxy (python, standard library) in front of `upstream_port`.
class FaultProxy {
 public:
  ~FaultProxy() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Status Start(int upstream_port, const std::vector<std::string>& extra) {
    const char* script = VIRGA_S3_FAULT_PROXY;
    std::vector<std::string> args = {"/usr/bin/python3", script, "--upstream",
                                      "127.0.0.1:" + std::to_string(upstream_port)};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::StartPortProcess(std::move(args), &pid_, &port_);
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

class S3StoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::S3TestServer;
    start_ = server_->Start({"virga-test", "other-bucket"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!start_.ok()) GTEST_SKIP() << "*** SKIPPED s3:// tests: " << start_.ToString() << " ***";
  }

  static aws::Settings Settings(const std::string& endpoint) {
    aws::Settings s;
    s.credentials.access_key_id = "S3RVER";
    s.credentials.secret_access_key = "S3RVER";
    s.region = "us-east-1";
    s.endpoint = endpoint;
    s.credentials_source = "test";
    return s;
  }
  std::shared_ptr<S3Store> Open(const std::string& path, S3StoreOptions o = {},
                                const std::string& endpoint = "") {
    auto r = S3Store::Open(path, Settings(endpoint.empty() ? server_->endpoint() : endpoint), o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : nullptr;
  }

  static testing::S3TestServer* server_;
  static Status start_;
};
testing::S3TestServer* S3StoreTest::server_ = nullptr;
Status S3StoreTest::start_;

TEST_F(S3StoreTest, MultipartPutInParallelParts) {
  S3StoreOptions o;
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  o.upload_parallelism = 3;
  auto store = Open("virga-test/multipart", o);
  const std::string big = Payload((13 << 20) + 123, 7);
  ASSERT_TRUE(store->Put("big.bin", big).ok());
  EXPECT_GE(store->stats().requests, 5u);  // start, 3 parts, complete
  std::string out;
  ASSERT_TRUE(store->Get("big.bin", &out).ok());
  EXPECT_TRUE(out == big);
  auto info = store->Stat("big.bin");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, big.size());
  ASSERT_TRUE(store->GetRange("big.bin", (5 << 20) - 3, 10, &out).ok());
  EXPECT_EQ(out, big.substr((5 << 20) - 3, 10));
}

TEST_F(S3StoreTest, ConnectionsAreReused) {
  auto store = Open("virga-test/reuse");
  ASSERT_TRUE(store->Put("k", "value").ok());
  std::string out;
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(store->Get("k", &out).ok());
  EXPECT_EQ(store->stats().requests, 31u);
  EXPECT_EQ(store->stats().connections, 1u);  // one keep-alive connection for 31 requests
}

TEST_F(S3StoreTest, ListFollowsContinuationTokens) {
  S3StoreOptions o;
  o.list_page_size = 7;
  auto store = Open("virga-test/paged", o);
  std::vector<std::string> keys;
  for (int i = 0; i < 23; ++i) {
    char k[32];
    std::snprintf(k, sizeof(k), "p/k+%02d ü", i);
    keys.push_back(k);
    ASSERT_TRUE(store->Put(k, std::to_string(i)).ok());
  }
  ASSERT_TRUE(store->Put("q/other", "x").ok());
  const uint64_t before = store->stats().requests;
  auto list = store->List("p/");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(store->stats().requests - before, 4u);  // 7 + 7 + 7 + 2
  ASSERT_EQ(list->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ((*list)[i].key, keys[i]);
}

TEST_F(S3StoreTest, PrefixesAndBucketsAreSeparate) {
  auto a = Open("virga-test/pa");
  auto b = Open("virga-test/pa-b/");
  auto c = Open("other-bucket");
  ASSERT_TRUE(a->Put("k", "a").ok());
  ASSERT_TRUE(b->Put("k", "b").ok());
  ASSERT_TRUE(c->Put("k", "c").ok());
  EXPECT_EQ(a->uri(), "s3://virga-test/pa");
  EXPECT_EQ(b->uri(), "s3://virga-test/pa-b");
  EXPECT_EQ(c->uri(), "s3://other-bucket");
  std::string out;
  ASSERT_TRUE(b->Get("k", &out).ok());
  EXPECT_EQ(out, "b");
  auto la = a->List("");
  ASSERT_TRUE(la.ok());
  ASSERT_EQ(la->size(), 1u);
  EXPECT_EQ((*la)[0].key, "k");
}

TEST_F(S3StoreTest, WrongCredentialsAreAClearErrorWithoutTheSecret) {
  aws::Settings s = Settings(server_->endpoint());
  s.credentials.secret_access_key = "Zq9SECRETvalue";
  s.credentials_source = "environment";
  auto store = S3Store::Open("virga-test/auth", s, {});
  ASSERT_TRUE(store.ok());
  for (Status st : {(*store)->Put("k", "v"), (*store)->List("").status(),
                    (*store)->Stat("k").status()}) {
    EXPECT_EQ(st.code(), Status::Code::kUnauthenticated) << st.ToString();
    EXPECT_EQ(st.message().find("Zq9SECRETvalue"), std::string::npos);
    EXPECT_NE(st.message().find("s3://virga-test/auth"), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("credentials from environment"), std::string::npos);
  }
  Status put = (*store)->Put("k", "v");
  EXPECT_NE(put.message().find("SignatureDoesNotMatch"), std::string::npos) << put.ToString();
  EXPECT_EQ((*store)->stats().retries, 0u);  // a 403 is not retried
}

TEST_F(S3StoreTest, MissingBucketNamesTheBucket) {
  auto store = Open("no-such-bucket/x");
  std::string out;
  for (Status st : {store->Get("k", &out), store->Stat("k").status(), store->Exists("k").status(),
                    store->List("").status(), store->Put("k", "v")}) {
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
    EXPECT_NE(st.message().find("\"no-such-bucket\" does not exist"), std::string::npos)
        << st.ToString();
  }
}

TEST_F(S3StoreTest, UnreachableEndpointFailsWithinTheRetryBound) {
  S3StoreOptions o;
  o.max_attempts = 3;
  o.backoff_base = milliseconds(10);
  auto store = Open("virga-test/x", o, "http://127.0.0.1:1");
  const auto t0 = std::chrono::steady_clock::now();
  std::string out;
  Status st = store->Get("k", &out);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.code(), Status::Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("127.0.0.1:1"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("s3://virga-test/x/k"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("3 tries"), std::string::npos) << st.ToString();
  EXPECT_EQ(store->stats().requests, 3u);
  EXPECT_LT(secs, 5.0);
}

TEST_F(S3StoreTest, BadUrisAreRejectedAtOpen) {
  for (const char* bad : {"", "UPPER", "ab", "bucket_with_underscore", "ok-bucket/a//b"}) {
    auto r = S3Store::Open(bad, Settings(server_->endpoint()), {});
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bad;
  }
  auto r = S3Store::Open("virga-test", Settings("ftp://127.0.0.1:1"), {});
  EXPECT_TRUE(r.status().IsInvalidArgument());
}

// https with a private certificate authority (AWS_CA_BUNDLE's setting): the
// body goes as UNSIGNED-PAYLOAD, s3rver still checks the signature; without the
// CA the certificate does not verify, and that is not retried.
TEST_F(S3StoreTest, HttpsWithAPrivateCertificateAuthority) {
  char tmpl[] = "/tmp/virga_s3_tls.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, key = dir + "/key.pem", cert = dir + "/cert.pem";
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                          "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert +
                          " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
  {
    testing::S3TestServer tls;
    ASSERT_TRUE(tls.Start({"virga-tls"}, key, cert).ok());
    ASSERT_EQ(tls.endpoint().rfind("https://", 0), 0u);
    aws::Settings s = Settings(tls.endpoint());
    s.ca_bundle = cert;
    auto store = S3Store::Open("virga-tls/p", s, {});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const std::string data = Payload(300000, 3);
    ASSERT_TRUE((*store)->Put("a b/ü.bin", data).ok());
    std::string out;
    ASSERT_TRUE((*store)->Get("a b/ü.bin", &out).ok());
    EXPECT_TRUE(out == data);
    auto list = (*store)->List("");
    ASSERT_TRUE(list.ok());
    EXPECT_EQ(list->size(), 1u);

    s.ca_bundle.clear();  // the system's authorities do not know this certificate
    auto untrusted = S3Store::Open("virga-tls/p", s, {});
    ASSERT_TRUE(untrusted.ok());
    Status st = (*untrusted)->Get("a b/ü.bin", &out);
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
    EXPECT_NE(st.message().find("127.0.0.1"), std::string::npos) << st.ToString();
    EXPECT_EQ((*untrusted)->stats().retries, 0u);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(S3StoreTest, InjectedFaultsCostRetriesNeverData) {
  FaultProxy proxy;
  Status s = proxy.Start(server_->port(), {"--every", "3"});
  if (!s.ok()) GTEST_SKIP() << "*** SKIPPED: " << s.ToString() << " ***";
  S3StoreOptions o;
  o.backoff_base = milliseconds(5);
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  auto store = Open("virga-test/faults", o, "http://127.0.0.1:" + std::to_string(proxy.port()));
  std::vector<std::string> payloads;
  for (int i = 0; i < 30; ++i) {
    payloads.push_back(Payload(1000 + i * 777, i));
    ASSERT_TRUE(store->Put("obj-" + std::to_string(i), payloads.back()).ok()) << i;
  }
  const std::string big = Payload((11 << 20) + 5, 99);
  ASSERT_TRUE(store->Put("big", big).ok());
  std::string out;
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(store->Get("obj-" + std::to_string(i), &out).ok()) << i;
    EXPECT_TRUE(out == payloads[i]) << i;
  }
  ASSERT_TRUE(store->Get("big", &out).ok());
  EXPECT_TRUE(out == big);
  auto list = store->List("");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 31u);
  EXPECT_GT(store->stats().retries, 20u);  // every third request was a fault
}

}  // namespace
}  // namespace virga
