// HttpClient: HTTP/1.1 requests through libcurl, for the AWS services
// (S3 now, Lambda next).
//
// Connections are reused: the client keeps a pool of curl easy handles, each
// holding its own keep-alive connection; a call borrows one for its duration,
// so N threads calling at once use N connections and a thread calling again
// reuses a warm one. The client does not sign, retry or interpret statuses:
// it returns what the peer said (any HTTP status is OK here) or a transport
// fault (Unavailable naming the method, the URL's host and path, and curl's
// reason). URLs never carry credentials, so every message may be logged.
//
// Thread safety: Perform may be called concurrently from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aws/sigv4.h"
#include "virga/status.h"

namespace virga::aws {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";  // GET PUT POST HEAD DELETE
  std::string url;             // absolute and already encoded: http://host:port/path?query
  Headers headers;             // sent as given (curl adds Host and, for a body, Content-Length)
  std::string_view body;       // PUT/POST body; must outlive the call
};

struct HttpResponse {
  long status = 0;
  Headers headers;  // names lower-cased, in arrival order
  // The body, appended to *body_sink when set (its capacity is reused, so a
  // caller reading many objects passes the same string), else to `body`.
  std::string body;
  std::string* body_sink = nullptr;
  // Value of a header (name lower-case), or "" if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  // A transfer slower than low_speed_bytes per second for low_speed_time is a
  // fault (a stalled peer), whatever the object's size.
  long low_speed_bytes = 1024;
  std::chrono::seconds low_speed_time{30};
  // Whole-request cap; 0 = none (large objects are bounded by the speed rule).
  std::chrono::milliseconds request_timeout{0};
  // Responses larger than this are a fault (ResourceExhausted): a peer cannot
  // make the client allocate without bound.
  uint64_t max_response_bytes = uint64_t{8} << 30;
  // PEM bundle of trusted certificate authorities for https; "": the system's.
  std::string ca_bundle;
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and fills *response (status, headers, body). Any HTTP
  // status is OK; a connection, DNS or timeout fault is Unavailable (worth
  // retrying); a peer whose certificate does not verify, or a bad URL, is
  // InvalidArgument (retrying cannot help); a response over
  // max_response_bytes is ResourceExhausted.
  Status Perform(const HttpRequest& request, HttpResponse* response);

  // Connections opened so far; every other request reused a pooled one.
  uint64_t connections_opened() const { return connections_opened_.load(); }

 private:
  struct Handle;
  std::unique_ptr<Handle> Borrow();
  void Return(std::unique_ptr<Handle> handle);

  const HttpOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> connections_opened_{0};
};

// "http://host:port/a/b?q" -> "host:port/a/b": a URL for messages, without
// its query (which may hold an upload id or a continuation token).
std::string UrlForMessage(std::string_view url);

// An endpoint "http://127.0.0.1:4568" -> scheme "http", host "127.0.0.1:4568",
// with a default port (80, 443) dropped as curl's Host header drops it, so the
// host is the one to sign. InvalidArgument naming the endpoint if it is not
// http(s)://host[:port] (a trailing '/' is allowed).
Status SplitEndpoint(std::string_view endpoint, std::string* scheme, std::string* host);

// `request` (whose host is the endpoint's) signed now and made an HttpRequest
// to scheme://host: the wire path and query, its headers plus the signer's.
HttpRequest SignedHttpRequest(std::string_view scheme, const RequestToSign& request,
                              const Credentials& credentials, const SigningScope& scope,
                              std::string_view body);

}  // namespace virga::aws
