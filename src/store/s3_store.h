// S3Store: the s3:// backend, for Amazon S3 and S3-compatible stores (MinIO,
// Ceph, R2, GCS's XML API, s3rver).
//
// URI: s3://bucket[/prefix]. Key "a/b" of the store is the S3 object
// "prefix/a/b" of the bucket. Settings follow the AWS conventions
// (src/aws/settings.h): credentials from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the profile AWS_PROFILE in
// ~/.aws/credentials and ~/.aws/config; region from AWS_REGION /
// AWS_DEFAULT_REGION / the profile; endpoint override AWS_ENDPOINT_URL_S3 /
// AWS_ENDPOINT_URL (then path-style addressing: http://host:port/bucket/key).
// Without an override, https://bucket.s3.<region>.amazonaws.com/key.
// Retry bounds may be set with VIRGA_S3_MAX_ATTEMPTS and VIRGA_S3_RETRY_SECONDS.
//
// Requests are signed with SigV4 (src/aws/sigv4.h); over plain http the body
// is hashed into the signature, over https it is sent as UNSIGNED-PAYLOAD (TLS
// protects it), as AWS's SDKs do. Credentials appear in no message.
//
// Operations: Put is one PUT up to `multipart_threshold`, above it a
// multipart upload whose parts go up `upload_parallelism` at a time (and are
// aborted if any part fails, so no partial object ever becomes visible). Get
// and GetRange are GETs (Range: bytes=a-b), List is ListObjectsV2 following
// continuation tokens, Stat/Exists are HEAD, Delete is DELETE (idempotent).
//
// Faults: 5xx, 429, SlowDown, RequestTimeout and transport faults (reset,
// refused, timed out) are retried with exponential backoff and full jitter,
// at most max_attempts times and within retry_budget; each request is
// re-signed. Every fault that remains is a Status naming the operation, the
// object's s3:// URI, the HTTP status, S3's error code and message, and the
// endpoint: NotFound (NoSuchKey), InvalidArgument (NoSuchBucket: a store
// that does not exist is not an absent object), Unauthenticated (403: wrong
// or expired credentials), Unavailable (retries exhausted), IOError (anything
// else).
//
// Thread safety: every method may be called concurrently; connections are
// pooled and reused (aws::HttpClient).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aws/http.h"
#include "aws/settings.h"
#include "aws/sigv4.h"
#include "virga/object_store.h"

namespace virga {

struct S3StoreOptions {
  uint64_t multipart_threshold = uint64_t{16} << 20;  // larger Puts upload in parts
  uint64_t part_size = uint64_t{16} << 20;            // bytes per part (S3's minimum: 5 MiB)
  int upload_parallelism = 4;                         // parts in flight per Put
  int list_page_size = 0;                             // keys per List request; 0 = S3's (1000)
  int max_attempts = 6;                               // tries per request (1 = no retry)
  std::chrono::milliseconds retry_budget{20'000};     // no new try this long after the first
  std::chrono::milliseconds backoff_base{50};         // first retry waits up to this
  std::chrono::milliseconds backoff_cap{2'000};       // no wait is longer than this
  aws::HttpOptions http;
};

// Request counters of one store instance (for tests and benchmarks).
struct S3StoreStats {
  uint64_t requests = 0;  // HTTP requests sent, retries included
  uint64_t retries = 0;
  uint64_t bytes_in = 0, bytes_out = 0;  // bodies received / sent
  uint64_t connections = 0;              // TCP connections opened (the rest were reused)
};

class S3Store final : public ObjectStore {
 public:
  // "bucket[/prefix]" with the settings of the environment (the registry's
  // entry for s3://).
  static Result<std::shared_ptr<ObjectStore>> Open(std::string_view bucket_and_prefix);
  static Result<std::shared_ptr<S3Store>> Open(std::string_view bucket_and_prefix,
                                               aws::Settings settings, S3StoreOptions options);

  std::string uri() const override;
  Status Put(std::string_view key, std::string_view data) override;
  Status Get(std::string_view key, std::string* out) override;
  Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                  std::string* out) override;
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;
  Result<bool> Exists(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;

  S3StoreStats stats() const;

 private:
  struct Call;
  S3Store(std::string bucket, std::string prefix, aws::Settings settings, S3StoreOptions options);

  std::string ObjectName(std::string_view key) const;  // prefix + key
  std::string UriOf(std::string_view key) const;       // s3://bucket/prefix/key
  // Sends `call`, retrying transient faults; the final response is in *resp
  // (any status), or a transport fault after the last try.
  Status Execute(const Call& call, aws::HttpResponse* resp);
  // The Status for a failed response of `call`.
  Status ErrorOf(const Call& call, const aws::HttpResponse& resp, std::string_view body) const;
  Status PutSingle(std::string_view key, std::string_view data);
  Status PutMultipart(std::string_view key, std::string_view data);
  Result<ObjectInfo> Head(std::string_view key, bool* found);

  const std::string bucket_, prefix_;  // prefix_ empty or ending in '/'
  const aws::Settings settings_;
  const S3StoreOptions options_;
  std::string scheme_, host_;  // of the endpoint ("http", "127.0.0.1:4568")
  bool path_style_ = true;
  bool sign_payload_ = true;
  aws::HttpClient http_;
  std::atomic<bool> bucket_known_{false};  // a request has succeeded on the bucket
  std::atomic<uint64_t> requests_{0}, retries_{0}, bytes_in_{0}, bytes_out_{0};
};

}  // namespace virga
