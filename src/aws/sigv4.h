// AWS Signature Version 4 for requests signed in the Authorization header.
//
// SignV4 builds the canonical request, the string to sign and the signature
// exactly as botocore does (checked byte for byte by sigv4_botocore_test.py):
// S3SigV4Auth for service "s3", SigV4Auth for every other service. It is a
// pure function of its arguments: no clock, no I/O, thread-safe.
//
// Secrets: the secret access key only enters the HMAC key chain and is wiped
// from the buffers that held it; no returned field contains it. The session
// token is not a secret in this sense: it travels in a request header and so
// appears in `canonical_request` too.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace virga::aws {

// The payload hash that tells S3 the body is not signed (TLS protects it).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// Sha256Hex(""): the payload hash of a request without a body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: none
  bool empty() const { return access_key_id.empty() || secret_access_key.empty(); }
};

struct SigningScope {
  std::string region;   // "us-east-1"
  std::string service;  // "s3" | "lambda" | ...
};

struct RequestToSign {
  std::string method;  // "GET", "PUT", "POST", "HEAD", "DELETE" (upper-cased when signed)
  // The Host header's value, signed as given: "127.0.0.1:4568", "s3.eu-west-1.amazonaws.com".
  std::string host;
  // DECODED path starting with '/': "/bucket/dir/key with space+ü" (UTF-8). Empty means "/".
  // A '/' always separates segments; a key cannot carry a literal "%2F".
  std::string path;
  // DECODED name/value pairs, any order; a valueless parameter ("uploads") has value "".
  std::vector<std::pair<std::string, std::string>> query;
  // Further headers to sign (names in any case), e.g. {"Range", "bytes=0-9"},
  // {"Content-Type", ...}, {"X-Amz-Invocation-Type", "Event"}. Repeated names are
  // signed as one header whose values are joined by ',' in order. Values are
  // signed with runs of whitespace collapsed to one space and the ends trimmed.
  // Headers the signer owns (Host, Authorization, X-Amz-Date, X-Amz-Content-Sha256,
  // X-Amz-Security-Token) are ignored here. Expect, User-Agent and X-Amzn-Trace-Id
  // are left unsigned, as botocore does (proxies rewrite them).
  std::vector<std::pair<std::string, std::string>> headers;
  // Lowercase hex SHA-256 of the body (kEmptyPayloadHash for none), or kUnsignedPayload.
  std::string payload_hash;
};

struct SignedRequest {
  // The path for the request line, URI-encoded as the service expects: every
  // byte but A-Z a-z 0-9 - _ . ~ and '/' as %XX (what botocore sends). The
  // canonical request signs it as is for "s3", and for other services after
  // removing "." / ".." segments and empty segments and encoding it again (so
  // "my-fn:prod" goes out as "my-fn%3Aprod" and is signed as "my-fn%253Aprod").
  std::string wire_path;
  // The query to send after '?': canonical (names and values encoded as by
  // UriEncode(x, true), "name=value" pairs sorted by name then value, joined by
  // '&'; "uploads" becomes "uploads="). Empty: no query.
  std::string wire_query;
  // To add to the request as they are: Authorization, X-Amz-Date, X-Amz-Content-Sha256
  // (always for "s3"; for other services only with kUnsignedPayload, as botocore),
  // X-Amz-Security-Token (when a session token is set). Host must be sent with
  // exactly the value signed (RequestToSign::host).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string canonical_request;  // for tests; holds no secret key
  std::string string_to_sign;     // for tests; holds no secret key
};

// Signs `request` at time `when` (whole seconds, UTC).
// REQUIRES: !credentials.empty(); scope.region and scope.service non-empty.
SignedRequest SignV4(const RequestToSign& request, const Credentials& credentials,
                     const SigningScope& scope, std::chrono::system_clock::time_point when);

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Percent-encodes every byte of `s` but the RFC 3986 unreserved A-Z a-z 0-9 - _ . ~
// (and '/' unless encode_slash) as %XX with upper-case hex.
std::string UriEncode(std::string_view s, bool encode_slash);

// "20130524T000000Z": the X-Amz-Date form of `when` (UTC, whole seconds).
std::string AmzDate(std::chrono::system_clock::time_point when);

}  // namespace virga::aws
