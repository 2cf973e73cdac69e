#include "lambda/runtime_api.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <thread>

#include "lambda/lambda_event.h"

namespace virga::lambda {
namespace {

constexpr uint64_t kMaxEventBytes = uint64_t{16} << 20;  // Lambda's own cap is 6 MB

aws::HttpOptions NextHttpOptions() {
  aws::HttpOptions o;
  o.request_timeout = std::chrono::milliseconds{0};
  o.low_speed_bytes = 0;  // a long poll sends nothing for as long as it waits
  o.max_response_bytes = kMaxEventBytes;
  return o;
}

aws::HttpOptions PostHttpOptions(const RuntimeApiOptions& options) {
  aws::HttpOptions o;
  o.request_timeout = options.post_timeout;
  o.max_response_bytes = 1 << 20;
  return o;
}

std::string Snippet(std::string_view body) {
  std::string s(body.substr(0, 200));
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

RuntimeApiClient::RuntimeApiClient(std::string base_url, RuntimeApiOptions options)
    : base_url_(std::move(base_url)),
      options_(options),
      next_http_(std::make_unique<aws::HttpClient>(NextHttpOptions())),
      post_http_(std::make_unique<aws::HttpClient>(PostHttpOptions(options))) {}

RuntimeApiClient::~RuntimeApiClient() = default;

Result<std::string> RuntimeApiClient::BaseUrlFor(std::string_view host_port) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("AWS_LAMBDA_RUNTIME_API '" + std::string(host_port) +
                                   "': " + std::string(why));
  };
  const size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("expected host:port");
  std::string_view host = host_port.substr(0, colon);
  std::string_view port = host_port.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
    return bad("bad port");
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  for (char c : bracketed ? host.substr(1, host.size() - 2) : host) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                    (bracketed && c == ':');
    if (!ok) return bad("bad host");
  }
  return "http://" + std::string(host_port) + "/2018-06-01/runtime/";
}

void RuntimeApiClient::Sleep(int attempt) const {
  auto delay = options_.backoff * (int64_t{1} << std::min(attempt, 20));
  std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(delay, options_.max_backoff));
}

Result<Invocation> RuntimeApiClient::Next() {
  aws::HttpRequest request;
  request.url = base_url_ + "invocation/next";
  aws::HttpResponse response;
  Status status;
  for (int attempt = 0; attempt < options_.next_attempts; ++attempt) {
    if (attempt > 0) Sleep(attempt - 1);
    response = aws::HttpResponse{};
    status = next_http_->Perform(request, &response);
    if (status.ok() || status.code() != Status::Code::kUnavailable) break;
  }
  VIRGA_RETURN_IF_ERROR(status);
  if (response.status != 200) {
    return Status::Internal("invocation/next: HTTP " + std::to_string(response.status) + ": " +
                            Snippet(response.body));
  }
  Invocation inv;
  inv.request_id = std::string(response.Header("lambda-runtime-aws-request-id"));
  if (inv.request_id.empty()) {
    return Status::Internal("invocation/next: no Lambda-Runtime-Aws-Request-Id header");
  }
  std::string_view deadline = response.Header("lambda-runtime-deadline-ms");
  int64_t ms = 0;
  auto [end, ec] = std::from_chars(deadline.data(), deadline.data() + deadline.size(), ms);
  if (ec == std::errc() && end == deadline.data() + deadline.size() && ms > 0) inv.deadline_ms = ms;
  inv.function_arn = std::string(response.Header("lambda-runtime-invoked-function-arn"));
  inv.trace_id = std::string(response.Header("lambda-runtime-trace-id"));
  inv.body = std::move(response.body);
  return inv;
}

Status RuntimeApiClient::Post(const std::string& url, std::string_view body,
                              std::string_view error_type) {
  aws::HttpRequest request;
  request.method = "POST";
  request.url = url;
  request.body = body;
  if (error_type.empty()) {
    request.headers.emplace_back("Content-Type", "application/json");
  } else {
    request.headers.emplace_back("Content-Type", "application/vnd.aws.lambda.error+json");
    request.headers.emplace_back("Lambda-Runtime-Function-Error-Type", std::string(error_type));
  }
  Status last;
  for (int attempt = 0; attempt < options_.post_attempts; ++attempt) {
    if (attempt > 0) Sleep(attempt - 1);
    aws::HttpResponse response;
    Status s = post_http_->Perform(request, &response);
    if (!s.ok()) {
      last = s;
      if (s.code() == Status::Code::kUnavailable) continue;
      return s;
    }
    if (response.status >= 200 && response.status < 300) return Status::OK();
    last = Status::Unavailable(aws::UrlForMessage(url) + ": HTTP " +
                               std::to_string(response.status) + ": " + Snippet(response.body));
    if (response.status < 500) return Status::InvalidArgument(last.message());
  }
  return last;
}

Status RuntimeApiClient::PostResponse(std::string_view request_id, std::string_view body) {
  return Post(base_url_ + "invocation/" + std::string(request_id) + "/response", body, "");
}

Status RuntimeApiClient::PostError(std::string_view request_id, std::string_view type,
                                   std::string_view message) {
  return Post(base_url_ + "invocation/" + std::string(request_id) + "/error",
              ErrorToJson(type, message), type);
}

Status RuntimeApiClient::PostInitError(std::string_view type, std::string_view message) {
  return Post(base_url_ + "init/error", ErrorToJson(type, message), type);
}

}  // namespace virga::lambda
