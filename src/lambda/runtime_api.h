// A client of the Lambda Runtime API (version 2018-06-01): the typed calls
// of a custom runtime, with their retry rules, over aws::HttpClient.
//
//   GET  invocation/next              long poll: no client timeout at all (the
//                                     sandbox is frozen between invocations);
//                                     retried only on a transport fault
//   POST invocation/{id}/response     retried on a transport fault or a 5xx
//   POST invocation/{id}/error        likewise
//   POST init/error                   likewise
//
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "aws/http.h"
#include "virga/status.h"

namespace virga::lambda {

struct RuntimeApiOptions {
  // Transport faults of `next` in a row before giving up (each after a backoff).
  int next_attempts = 20;
  // Attempts of each post (transport faults and 5xx answers are retried).
  int post_attempts = 5;
  // First backoff, doubled after each failed attempt, capped at max_backoff.
  std::chrono::milliseconds backoff{20};
  std::chrono::milliseconds max_backoff{1'000};
  // Whole-request cap of a post (not of `next`, which has none); 0 = none.
  std::chrono::milliseconds post_timeout{30'000};
};

// One invocation as `next` returned it.
struct Invocation {
  std::string request_id;    // Lambda-Runtime-Aws-Request-Id
  int64_t deadline_ms = 0;   // Lambda-Runtime-Deadline-Ms (Unix epoch ms); 0 = not given
  std::string function_arn;  // Lambda-Runtime-Invoked-Function-Arn
  std::string trace_id;      // Lambda-Runtime-Trace-Id
  std::string body;          // the event
};

class RuntimeApiClient {
 public:
  // `base_url`: "http://host:port/2018-06-01/runtime/" (with the final '/').
  explicit RuntimeApiClient(std::string base_url, RuntimeApiOptions options = {});
  ~RuntimeApiClient();

  // The base URL for AWS_LAMBDA_RUNTIME_API's value ("127.0.0.1:9001");
  // InvalidArgument when it is not a host:port.
  static Result<std::string> BaseUrlFor(std::string_view host_port);

  // Blocks until the next invocation. Unavailable after next_attempts
  // transport faults in a row; Internal when the API answers anything but
  // 200 or leaves out the request id (the runtime should then exit).
  Result<Invocation> Next();
  // POSTs `body` (JSON) as the invocation's response.
  Status PostResponse(std::string_view request_id, std::string_view body);
  // POSTs an error document of `type` with `message`.
  Status PostError(std::string_view request_id, std::string_view type, std::string_view message);
  // POSTs init/error: the runtime could not start.
  Status PostInitError(std::string_view type, std::string_view message);

 private:
  Status Post(const std::string& url, std::string_view body, std::string_view error_type);
  void Sleep(int attempt) const;

  const std::string base_url_;
  const RuntimeApiOptions options_;
  std::unique_ptr<aws::HttpClient> next_http_;  // no timeouts: a frozen sandbox must not break it
  std::unique_ptr<aws::HttpClient> post_http_;
};

}  // namespace virga::lambda
