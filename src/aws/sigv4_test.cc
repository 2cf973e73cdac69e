#include "aws/sigv4.h"

#include <gtest/gtest.h>

#include <ctime>

namespace virga::aws {
namespace {

using Clock = std::chrono::system_clock;

Clock::time_point At(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return Clock::from_time_t(timegm(&tm));
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

RequestToSign Req(std::string method, std::string path, Pairs query = {}, Pairs headers = {},
                  std::string_view payload_hash = kEmptyPayloadHash, std::string host = "h") {
  RequestToSign r;
  r.method = std::move(method);
  r.host = std::move(host);
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = std::move(headers);
  r.payload_hash = payload_hash;
  return r;
}

std::string SignatureOf(const SignedRequest& signed_request) {
  for (const auto& [name, value] : signed_request.headers) {
    if (name == "Authorization") return value.substr(value.rfind('=') + 1);
  }
  return "";
}

std::string HeaderOf(const SignedRequest& signed_request, std::string_view wanted) {
  for (const auto& [name, value] : signed_request.headers) {
    if (name == wanted) return value;
  }
  return "<absent>";
}

// The examples of AWS's S3 documentation, "Signature Calculations for the
// Authorization Header": bucket examplebucket, 2013-05-24, us-east-1.
class S3DocumentedExample : public ::testing::Test {
 protected:
  SignedRequest Sign(RequestToSign r) {
    r.host = "examplebucket.s3.amazonaws.com";
    return SignV4(r, {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},
                  {"us-east-1", "s3"}, At(2013, 5, 24, 0, 0, 0));
  }
};

TEST_F(S3DocumentedExample, GetObjectWithRange) {
  SignedRequest s = Sign(Req("GET", "/test.txt", {}, {{"Range", "bytes=0-9"}}, Sha256Hex("")));
  EXPECT_EQ(
      s.canonical_request,
      "GET\n/test.txt\n\n"
      "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\n"
      "host;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(HeaderOf(s, "Authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(HeaderOf(s, "X-Amz-Date"), "20130524T000000Z");
  EXPECT_EQ(HeaderOf(s, "X-Amz-Content-Sha256"), kEmptyPayloadHash);
  EXPECT_EQ(HeaderOf(s, "X-Amz-Security-Token"), "<absent>");
  EXPECT_EQ(s.wire_path, "/test.txt");
  EXPECT_EQ(s.wire_query, "");
}

TEST_F(S3DocumentedExample, PutObjectWithDateAndStorageClass) {
  const std::string hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SignedRequest s = Sign(Req(
      "PUT", "/test$file.text", {},
      {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
      hash));
  EXPECT_EQ(s.wire_path, "/test%24file.text");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(SignatureOf(s), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_F(S3DocumentedExample, GetBucketLifecycleValuelessParameter) {
  SignedRequest s = Sign(Req("GET", "/", {{"lifecycle", ""}}));
  EXPECT_EQ(s.wire_query, "lifecycle=");
  EXPECT_EQ(s.string_to_sign.substr(s.string_to_sign.rfind('\n') + 1),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(SignatureOf(s), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_F(S3DocumentedExample, ListObjectsQuerySorted) {
  SignedRequest s = Sign(Req("GET", "/", {{"prefix", "J"}, {"max-keys", "2"}}));
  EXPECT_EQ(s.wire_query, "max-keys=2&prefix=J");
  EXPECT_EQ(SignatureOf(s), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// Vectors of AWS's SigV4 test suite (service "service", 2015-08-30T12:36:00Z):
// those whose path needs no encoding, where the suite's request line and
// botocore's encoded wire path agree.
struct SuiteVector {
  const char* name;
  RequestToSign request;
  bool session_token;
  const char* signature;
};

void PrintTo(const SuiteVector& v, std::ostream* os) { *os << v.name; }

class SigV4Suite : public ::testing::TestWithParam<SuiteVector> {};

TEST_P(SigV4Suite, Signs) {
  const SuiteVector& v = GetParam();
  RequestToSign r = v.request;
  r.host = "example.amazonaws.com";
  r.payload_hash = Sha256Hex("");
  Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  if (v.session_token)
    c.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  SignedRequest s = SignV4(r, c, {"us-east-1", "service"}, At(2015, 8, 30, 12, 36, 0));
  EXPECT_EQ(SignatureOf(s), v.signature) << s.canonical_request;
  // Only S3 is sent the payload hash as a header (as botocore's SigV4Auth).
  EXPECT_EQ(HeaderOf(s, "X-Amz-Content-Sha256"), "<absent>");
}

INSTANTIATE_TEST_SUITE_P(
    Published, SigV4Suite,
    ::testing::Values(
        SuiteVector{"get_vanilla", Req("GET", "/"), false,
                    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        SuiteVector{"post_vanilla", Req("POST", "/"), false,
                    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        SuiteVector{
            "get_unreserved",
            Req("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            false, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
        SuiteVector{"get_vanilla_query_order_key_case",
                    Req("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}), false,
                    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
        SuiteVector{"get_vanilla_query_order_encoded",
                    Req("GET", "/",
                        {{"Param-3", "Value3"}, {"Param", "Value2"}, {"\xE1\x88\xB4", "Value1"}}),
                    false, "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
        SuiteVector{"post_vanilla_query", Req("post", "/", {{"Param1", "value1"}}), false,
                    "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
        SuiteVector{
            "get_header_value_trim",
            Req("GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}),
            false, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
        SuiteVector{
            "get_header_key_duplicate",
            Req("GET", "/", {},
                {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}),
            false, "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
        SuiteVector{"get_header_value_order",
                    Req("GET", "/", {},
                        {{"My-Header1", "value4"},
                         {"My-Header1", "value1"},
                         {"My-Header1", "value3"},
                         {"My-Header1", "value2"}}),
                    false, "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
        SuiteVector{"post_header_value_case", Req("POST", "/", {}, {{"My-Header1", "VALUE1"}}),
                    false, "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
        SuiteVector{"get_vanilla_with_session_token", Req("GET", "/"), true,
                    "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"}),
    [](const auto& info) { return std::string(info.param.name); });

const Credentials kKeys{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};

TEST(SignV4, S3EncodesThePathOnceAndKeepsDotSegments) {
  SignedRequest s = SignV4(Req("GET", "/bucket/a/./b/../key with space+50%~*\xC3\xBC/", {}, {},
                               kUnsignedPayload, "127.0.0.1:4568"),
                           kKeys, {"us-east-1", "s3"}, At(2024, 1, 2, 3, 4, 5));
  EXPECT_EQ(s.wire_path, "/bucket/a/./b/../key%20with%20space%2B50%25~%2A%C3%BC/");
  EXPECT_EQ(s.canonical_request.substr(0, s.canonical_request.find('\n', 4)),
            "GET\n/bucket/a/./b/../key%20with%20space%2B50%25~%2A%C3%BC/");
  EXPECT_EQ(HeaderOf(s, "X-Amz-Content-Sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(HeaderOf(s, "X-Amz-Date"), "20240102T030405Z");
}

TEST(SignV4, OtherServicesNormaliseAndEncodeTwice) {
  SignedRequest s = SignV4(
      Req("POST", "/2015-03-31/functions/my-fn:prod/invocations", {{"Qualifier", "prod"}},
          {{"X-Amz-Invocation-Type", "Event"}}, Sha256Hex("{}"), "lambda.us-east-1.amazonaws.com"),
      kKeys, {"us-east-1", "lambda"}, At(2024, 1, 2, 3, 4, 5));
  EXPECT_EQ(s.wire_path, "/2015-03-31/functions/my-fn%3Aprod/invocations");
  EXPECT_EQ(s.wire_query, "Qualifier=prod");
  EXPECT_EQ(s.canonical_request,
            "POST\n/2015-03-31/functions/my-fn%253Aprod/invocations\nQualifier=prod\n"
            "host:lambda.us-east-1.amazonaws.com\nx-amz-date:20240102T030405Z\n"
            "x-amz-invocation-type:Event\n\nhost;x-amz-date;x-amz-invocation-type\n" +
                Sha256Hex("{}"));
  EXPECT_EQ(HeaderOf(s, "X-Amz-Content-Sha256"), "<absent>");

  SignedRequest dots =
      SignV4(Req("GET", "//a/./b/../c//"), kKeys, {"us-east-1", "lambda"}, At(2024, 1, 2, 3, 4, 5));
  EXPECT_EQ(dots.wire_path, "//a/./b/../c//");
  EXPECT_EQ(dots.canonical_request.substr(0, dots.canonical_request.find('\n', 4)), "GET\n/a/c/");
}

TEST(SignV4, SessionTokenIsSignedAndSent) {
  Credentials c = kKeys;
  c.session_token = "token/with+chars==";
  SignedRequest s = SignV4(Req("HEAD", "/b/k"), c, {"us-east-1", "s3"}, At(2024, 1, 2, 3, 4, 5));
  EXPECT_EQ(HeaderOf(s, "X-Amz-Security-Token"), "token/with+chars==");
  EXPECT_NE(s.canonical_request.find("\nx-amz-security-token:token/with+chars==\n\n"),
            std::string::npos);
  EXPECT_NE(HeaderOf(s, "Authorization").find("x-amz-date;x-amz-security-token, "),
            std::string::npos);
}

TEST(SignV4, SignerOwnedAndUnsignedHeadersAreNotTakenFromTheCaller) {
  RequestToSign r = Req("GET", "/b/k", {},
                        {{"Host", "evil"},
                         {"X-Amz-Date", "19990101T000000Z"},
                         {"Authorization", "x"},
                         {"User-Agent", "ua"},
                         {"Expect", "100-continue"},
                         {"x-amzn-trace-id", "t"},
                         {"Content-Type", "a/b"}});
  SignedRequest s = SignV4(r, kKeys, {"us-east-1", "s3"}, At(2024, 1, 2, 3, 4, 5));
  EXPECT_NE(HeaderOf(s, "Authorization")
                .find("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "),
            std::string::npos);
  EXPECT_NE(s.canonical_request.find("host:h\n"), std::string::npos);
}

TEST(SignV4, HeaderNameCaseAndOrderDoNotMatterButTheSecretDoes) {
  auto sign = [](Pairs headers, std::string secret) {
    return SignatureOf(SignV4(Req("GET", "/k", {}, std::move(headers)), {"AKID", secret, ""},
                              {"us-east-1", "s3"}, At(2024, 1, 2, 3, 4, 5)));
  };
  const std::string a = sign({{"Range", "bytes=0-9"}, {"Content-Type", "x"}}, "secret");
  EXPECT_EQ(a, sign({{"content-type", "x"}, {"RANGE", "bytes=0-9"}}, "secret"));
  EXPECT_NE(a, sign({{"Range", "bytes=0-9"}, {"Content-Type", "x"}}, "secreT"));
  EXPECT_EQ(a.size(), 64u);
}

TEST(UriEncode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", true), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b+c%d*e/f", true), "a%20b%2Bc%25d%2Ae%2Ff");
  EXPECT_EQ(UriEncode("a b+c%d*e/f", false), "a%20b%2Bc%25d%2Ae/f");
  EXPECT_EQ(UriEncode("\xC3\xBC\xE6\x97\xA5\xE6\x9C\xAC", false), "%C3%BC%E6%97%A5%E6%9C%AC");
  EXPECT_EQ(UriEncode("=&?#:@!$'()", true), "%3D%26%3F%23%3A%40%21%24%27%28%29");
  EXPECT_EQ(UriEncode(std::string_view("\0\xff", 2), true), "%00%FF");
  EXPECT_EQ(UriEncode("", true), "");
}

TEST(Sha256Hex, KnownDigests) {
  EXPECT_EQ(Sha256Hex(""), kEmptyPayloadHash);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(AmzDate, FormatsUtcWholeSeconds) {
  EXPECT_EQ(AmzDate(At(2013, 5, 24, 0, 0, 0)), "20130524T000000Z");
  EXPECT_EQ(AmzDate(At(2024, 12, 31, 23, 59, 59) + std::chrono::milliseconds(999)),
            "20241231T235959Z");
}

}  // namespace
}  // namespace virga::aws
