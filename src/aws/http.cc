#include "aws/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace virga::aws {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse* response = nullptr;
  std::string* sink = nullptr;
  uint64_t max_bytes = 0;
  bool too_large = false;
  bool reserve = false;  // reserve the sink for the announced Content-Length
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->sink->size() + bytes > t->max_bytes) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  t->sink->append(data, bytes);
  return bytes;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  std::string_view line(data, bytes);
  if (line.starts_with("HTTP/")) {
    t->response->headers.clear();  // a new response (after 100 Continue or a redirect)
    return bytes;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  std::string name(Trim(line.substr(0, colon)));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = Trim(line.substr(colon + 1));
  if (t->reserve && name == "content-length") {
    uint64_t n = std::strtoull(std::string(value).c_str(), nullptr, 10);
    // Trust the announced size only up to 256 MiB; larger bodies grow as they arrive.
    if (n <= t->max_bytes && n <= (uint64_t{256} << 20)) t->sink->reserve(static_cast<size_t>(n));
  }
  t->response->headers.emplace_back(std::move(name), std::string(value));
  return bytes;
}

}  // namespace

struct HttpClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

HttpClient::HttpClient(HttpOptions options) : options_(options) { GlobalInit(); }
HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::Borrow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->curl = curl_easy_init();
  return h;
}

void HttpClient::Return(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(handle));
}

Status HttpClient::Perform(const HttpRequest& request, HttpResponse* response) {
  std::unique_ptr<Handle> h = Borrow();
  if (h->curl == nullptr) return Status::Internal("curl_easy_init failed");
  CURL* c = h->curl;
  curl_easy_reset(c);  // keeps the connection cache, drops the last request's options

  response->status = 0;
  response->headers.clear();
  std::string* sink = response->body_sink != nullptr ? response->body_sink : &response->body;
  sink->clear();
  Transfer t{response, sink, options_.max_response_bytes, false, request.method == "GET"};

  curl_slist* headers = nullptr;
  for (const auto& [k, v] : request.headers) {
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  }
  // No "Expect: 100-continue" round trip before a PUT body: S3 answers at once.
  headers = curl_slist_append(headers, "Expect:");

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  if (options_.request_timeout.count() > 0) {
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  if (!options_.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_bundle.c_str());
  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  long status = 0, connects = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
  connections_opened_ += static_cast<uint64_t>(connects);
  Return(std::move(h));

  if (t.too_large) {
    return Status::ResourceExhausted(request.method + " " + UrlForMessage(request.url) +
                                     ": response larger than " +
                                     std::to_string(options_.max_response_bytes) + " bytes");
  }
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
      rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return Status::InvalidArgument(request.method + " " + UrlForMessage(request.url) + ": " +
                                   curl_easy_strerror(rc) +
                                   (options_.ca_bundle.empty() ? "" : " (CA bundle " +
                                                                          options_.ca_bundle + ")"));
  }
  if (rc != CURLE_OK) {
    return Status::Unavailable(request.method + " " + UrlForMessage(request.url) + ": " +
                               curl_easy_strerror(rc));
  }
  response->status = status;
  return Status::OK();
}

Status SplitEndpoint(std::string_view endpoint, std::string* scheme, std::string* host) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("endpoint \"" + std::string(endpoint) + "\": " + std::string(why));
  };
  const size_t sep = endpoint.find("://");
  if (sep == std::string_view::npos) return bad("expected http://host[:port] or https://host[:port]");
  *scheme = std::string(endpoint.substr(0, sep));
  if (*scheme != "http" && *scheme != "https") return bad("scheme must be http or https");
  std::string_view rest = endpoint.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) {
    return bad("expected a host and port with no path");
  }
  *host = std::string(rest);
  if (*scheme == "http" && host->ends_with(":80")) host->resize(host->size() - 3);
  if (*scheme == "https" && host->ends_with(":443")) host->resize(host->size() - 4);
  return Status::OK();
}

HttpRequest SignedHttpRequest(std::string_view scheme, const RequestToSign& request,
                              const Credentials& credentials, const SigningScope& scope,
                              std::string_view body) {
  SignedRequest s = SignV4(request, credentials, scope, std::chrono::system_clock::now());
  HttpRequest req;
  req.method = request.method;
  req.url = std::string(scheme) + "://" + request.host + s.wire_path;
  if (!s.wire_query.empty()) req.url += "?" + s.wire_query;
  req.headers = request.headers;
  for (auto& h : s.headers) req.headers.push_back(std::move(h));
  req.body = body;
  return req;
}

std::string UrlForMessage(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  size_t q = url.find('?');
  if (q != std::string_view::npos) url = url.substr(0, q);
  return std::string(url);
}

}  // namespace virga::aws
