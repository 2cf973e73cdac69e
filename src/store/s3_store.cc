#include "store/s3_store.h"

#include "store/s3_xml.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

namespace virga {
namespace {

using Clock = std::chrono::steady_clock;

Status ValidateBucket(std::string_view bucket, std::string_view uri) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("s3 store URI \"s3://" + std::string(uri) + "\": bucket \"" +
                                   std::string(bucket) + "\" " + std::string(why));
  };
  if (bucket.size() < 3 || bucket.size() > 63) return bad("must be 3 to 63 characters long");
  for (char c : bucket) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      return bad("may hold only lower-case letters, digits, '.' and '-'");
    }
  }
  return Status::OK();
}

bool ParseEnvInt(const char* name, long lo, long hi, long* out, Status* error) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return false;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < lo || n > hi) {
    *error = Status::InvalidArgument(std::string(name) + "=\"" + v + "\": expected an integer in [" +
                                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return false;
  }
  *out = n;
  return true;
}

bool Retryable(long status, std::string_view code) {
  return status >= 500 || status == 429 || code == "SlowDown" || code == "RequestTimeout" ||
         code == "RequestTimeTooSkewed" || code == "InternalError";
}

}  // namespace

// One S3 request, before signing.
struct S3Store::Call {
  std::string op;      // for messages: "GET", "PUT part 3", "LIST", ...
  std::string method;  // HTTP method
  std::string key;     // the store's key ("" for bucket-level requests)
  std::vector<std::pair<std::string, std::string>> query;
  aws::Headers headers;   // signed and sent
  std::string_view body;  // PUT/POST body
  std::string* sink = nullptr;  // where the response body goes (else resp->body)
  bool bucket_level = false;    // a request on the bucket (LIST), not on an object
};

Result<std::shared_ptr<ObjectStore>> S3Store::Open(std::string_view bucket_and_prefix) {
  VIRGA_ASSIGN_OR_RETURN(aws::Settings settings, aws::ResolveSettings("s3"));
  S3StoreOptions options;
  Status env_error;
  long n = 0;
  if (ParseEnvInt("VIRGA_S3_MAX_ATTEMPTS", 1, 100, &n, &env_error)) options.max_attempts = int(n);
  VIRGA_RETURN_IF_ERROR(env_error);
  if (ParseEnvInt("VIRGA_S3_RETRY_SECONDS", 0, 3600, &n, &env_error)) {
    options.retry_budget = std::chrono::seconds(n);
  }
  VIRGA_RETURN_IF_ERROR(env_error);
  VIRGA_ASSIGN_OR_RETURN(auto store, Open(bucket_and_prefix, std::move(settings), options));
  return std::shared_ptr<ObjectStore>(std::move(store));
}

Result<std::shared_ptr<S3Store>> S3Store::Open(std::string_view bucket_and_prefix,
                                               aws::Settings settings, S3StoreOptions options) {
  std::string_view rest = bucket_and_prefix;
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  VIRGA_RETURN_IF_ERROR(ValidateBucket(bucket, bucket_and_prefix));
  std::string prefix;
  if (slash != std::string_view::npos) {
    prefix = std::string(rest.substr(slash + 1));
    Status s = ValidateObjectKey(prefix);
    if (!s.ok()) {
      return Status::InvalidArgument("s3 store URI \"s3://" + std::string(bucket_and_prefix) +
                                     "\": bad prefix: " + s.message());
    }
    prefix += '/';
  }
  if (options.part_size < (uint64_t{5} << 20)) {
    return Status::InvalidArgument("S3 part size must be at least 5 MiB");
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.upload_parallelism < 1) options.upload_parallelism = 1;
  auto store = std::shared_ptr<S3Store>(
      new S3Store(std::string(bucket), std::move(prefix), std::move(settings), options));
  const bool custom = !store->settings_.endpoint.empty();
  const std::string endpoint =
      custom ? store->settings_.endpoint : aws::DefaultEndpoint("s3", store->settings_.region);
  if (Status st = aws::SplitEndpoint(endpoint, &store->scheme_, &store->host_); !st.ok()) {
    return Status::InvalidArgument("S3 " + st.message());
  }
  // Virtual-hosted addressing on AWS unless the bucket name holds dots (TLS
  // certificates cover one label); path-style on custom endpoints.
  store->path_style_ = custom || bucket.find('.') != std::string_view::npos;
  if (!store->path_style_) store->host_ = std::string(bucket) + "." + store->host_;
  store->sign_payload_ = store->scheme_ == "http";
  return store;
}

S3Store::S3Store(std::string bucket, std::string prefix, aws::Settings settings,
                 S3StoreOptions options)
    : bucket_(std::move(bucket)),
      prefix_(std::move(prefix)),
      settings_(std::move(settings)),
      options_(options),
      http_([&] {
        aws::HttpOptions h = options.http;
        if (h.ca_bundle.empty()) h.ca_bundle = settings_.ca_bundle;
        return h;
      }()) {}

std::string S3Store::uri() const {
  std::string u = "s3://" + bucket_;
  if (!prefix_.empty()) u += "/" + prefix_.substr(0, prefix_.size() - 1);
  return u;
}

std::string S3Store::ObjectName(std::string_view key) const { return prefix_ + std::string(key); }

std::string S3Store::UriOf(std::string_view key) const {
  return "s3://" + bucket_ + "/" + ObjectName(key);
}

S3StoreStats S3Store::stats() const {
  return {requests_.load(), retries_.load(), bytes_in_.load(), bytes_out_.load(),
          http_.connections_opened()};
}

Status S3Store::Execute(const Call& call, aws::HttpResponse* resp) {
  aws::RequestToSign r;
  r.method = call.method;
  r.host = host_;
  if (call.bucket_level) {
    r.path = path_style_ ? "/" + bucket_ : "/";
  } else {
    r.path = (path_style_ ? "/" + bucket_ + "/" : "/") + ObjectName(call.key);
  }
  r.query = call.query;
  r.headers = call.headers;
  r.payload_hash = !sign_payload_      ? std::string(aws::kUnsignedPayload)
                   : call.body.empty() ? std::string(aws::kEmptyPayloadHash)
                                       : aws::Sha256Hex(call.body);

  thread_local std::mt19937_64 rng{std::random_device{}()};
  const Clock::time_point start = Clock::now();
  Status last;
  int attempt = 1;
  for (;; ++attempt) {
    const aws::HttpRequest req =
        aws::SignedHttpRequest(scheme_, r, settings_.credentials, {settings_.region, "s3"}, call.body);
    resp->body_sink = call.sink;
    ++requests_;
    last = http_.Perform(req, resp);
    bool retry = false;
    if (!last.ok()) {
      retry = last.code() == Status::Code::kUnavailable;
    } else {
      bytes_out_ += call.body.size();
      const std::string& body = call.sink != nullptr ? *call.sink : resp->body;
      bytes_in_ += body.size();
      if (resp->status < 300) return Status::OK();
      retry = Retryable(resp->status, resp->status >= 400 ? s3::ParseError(body).code : "");
      if (!retry) return Status::OK();  // the caller interprets the error response
    }
    const auto elapsed = Clock::now() - start;
    if (!retry || attempt >= options_.max_attempts) break;
    const int64_t cap = std::min<int64_t>(options_.backoff_cap.count(),
                                          options_.backoff_base.count() << std::min(attempt - 1, 20));
    auto wait = std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng));
    if (elapsed + wait > options_.retry_budget) break;
    ++retries_;
    std::this_thread::sleep_for(wait);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  char took[64];
  std::snprintf(took, sizeof(took), " (gave up after %d tr%s in %.1f s)", attempt,
                attempt == 1 ? "y" : "ies", secs);
  if (!last.ok()) {
    const std::string what = call.op + " " + (call.bucket_level ? uri() : UriOf(call.key)) + ": ";
    if (last.code() != Status::Code::kUnavailable) return Status(last.code(), what + last.message());
    return Status::Unavailable(what + last.message() + took);
  }
  const std::string& body = call.sink != nullptr ? *call.sink : resp->body;
  Status e = ErrorOf(call, *resp, body);
  return Status::Unavailable(e.message() + took);
}

Status S3Store::ErrorOf(const Call& call, const aws::HttpResponse& resp,
                        std::string_view body) const {
  s3::ErrorDocument e = s3::ParseError(body);
  std::string what = call.op + " " + (call.bucket_level ? uri() : UriOf(call.key));
  std::string m = what + ": HTTP " + std::to_string(resp.status);
  if (!e.code.empty()) m += " " + e.code;
  if (!e.message.empty()) m += ": " + e.message;
  if (e.code.empty() && call.method == "HEAD" && resp.status == 403) {
    m += " (access denied: wrong or expired credentials, or no permission)";
  }
  m += " [endpoint " + scheme_ + "://" + host_ + "]";
  if (resp.status == 403 || e.code == "InvalidAccessKeyId" || e.code == "ExpiredToken") {
    return Status::Unauthenticated(m + " (credentials from " + settings_.credentials_source + ")");
  }
  if (e.code == "NoSuchBucket") {
    // Not NotFound: callers read NotFound as "this object is absent", and a store whose
    // bucket is missing is a configuration error, not an empty store.
    return Status::InvalidArgument(what + ": bucket \"" + bucket_ + "\" does not exist [endpoint " +
                            scheme_ + "://" + host_ + "]");
  }
  if (resp.status == 404) return Status::NotFound(m);
  return Status::IOError(m);
}

Status S3Store::Put(std::string_view key, std::string_view data) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (data.size() > options_.multipart_threshold) return PutMultipart(key, data);
  return PutSingle(key, data);
}

Status S3Store::PutSingle(std::string_view key, std::string_view data) {
  Call c{"PUT", "PUT", std::string(key), {}, {}, data, nullptr};
  c.headers.emplace_back("Content-Type", "application/octet-stream");
  aws::HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
  if (resp.status >= 300) return ErrorOf(c, resp, resp.body);
  return Status::OK();
}

Status S3Store::PutMultipart(std::string_view key, std::string_view data) {
  aws::HttpResponse resp;
  Call init{"PUT (start multipart upload)", "POST", std::string(key), {{"uploads", ""}}, {}, {}, nullptr};
  init.headers.emplace_back("Content-Type", "application/octet-stream");
  VIRGA_RETURN_IF_ERROR(Execute(init, &resp));
  if (resp.status >= 300) return ErrorOf(init, resp, resp.body);
  const std::string upload_id = s3::ParseUploadId(resp.body);
  if (upload_id.empty()) {
    return Status::IOError(init.op + " " + UriOf(key) + ": no UploadId in the response");
  }

  const uint64_t part = options_.part_size;
  const size_t parts = static_cast<size_t>((data.size() + part - 1) / part);
  std::vector<std::string> etags(parts);
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status failed;  // GUARDED_BY(mu)
  auto upload = [&] {
    aws::HttpResponse r;
    for (size_t i = next++; i < parts; i = next++) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!failed.ok()) return;
      }
      Call c{"PUT part " + std::to_string(i + 1) + "/" + std::to_string(parts), "PUT",
             std::string(key),
             {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}},
             {},
             data.substr(i * part, part),
             nullptr};
      Status s = Execute(c, &r);
      if (s.ok() && r.status >= 300) s = ErrorOf(c, r, r.body);
      if (s.ok()) {
        etags[i] = std::string(r.Header("etag"));
        if (etags[i].empty()) s = Status::IOError(c.op + " " + UriOf(key) + ": no ETag in the response");
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed.ok()) failed = s;
        return;
      }
    }
  };
  const int threads = static_cast<int>(std::min<size_t>(parts, options_.upload_parallelism));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(upload);
  upload();
  for (auto& t : pool) t.join();

  Status s = failed;
  if (s.ok()) {
    const std::string xml = s3::CompleteMultipartXml(etags);
    Call done{"PUT (complete multipart upload)", "POST", std::string(key),
              {{"uploadId", upload_id}}, {}, xml, nullptr};
    done.headers.emplace_back("Content-Type", "application/xml");
    s = Execute(done, &resp);
    if (s.ok()) {
      // S3 may answer 200 and still report an error in the body.
      s3::ErrorDocument e = s3::ParseError(resp.body);
      if (resp.status >= 300 || !e.code.empty()) {
        s = ErrorOf(done, resp, resp.body);
        if (e.code == "NoSuchUpload") {
          // A retried Complete whose first try succeeded: the object is there.
          bool found = false;
          auto info = Head(key, &found);
          if (info.ok() && found && info->size == data.size()) return Status::OK();
        }
      }
    }
  }
  if (!s.ok()) {
    Call abort{"PUT (abort multipart upload)", "DELETE", std::string(key),
               {{"uploadId", upload_id}}, {}, {}, nullptr};
    (void)Execute(abort, &resp);
  }
  return s;
}

Status S3Store::Get(std::string_view key, std::string* out) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  Call c{"GET", "GET", std::string(key), {}, {}, {}, out};
  aws::HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
  if (resp.status >= 300) {
    Status s = ErrorOf(c, resp, *out);
    out->clear();
    return s;
  }
  return Status::OK();
}

Status S3Store::GetRange(std::string_view key, uint64_t offset, uint64_t length,
                         std::string* out) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  out->clear();
  auto bounds = [&]() -> Status {
    // An empty range, or one S3 refused (416): decide from the object's size.
    bool found = false;
    VIRGA_ASSIGN_OR_RETURN(ObjectInfo info, Head(key, &found));
    if (!found) return Status::NotFound(std::string(key) + ": no such object in " + uri());
    if (offset > info.size) {
      return Status::OutOfRange(UriOf(key) + ": offset " + std::to_string(offset) +
                                " is beyond the object's " + std::to_string(info.size) + " bytes");
    }
    return Status::OK();
  };
  if (length == 0) return bounds();
  Call c{"GET", "GET", std::string(key), {}, {}, {}, out};
  const uint64_t last = length > UINT64_MAX - offset ? UINT64_MAX - 1 : offset + length - 1;
  c.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(last));
  aws::HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
  if (resp.status == 416) {
    out->clear();
    return bounds();
  }
  if (resp.status >= 300) {
    Status s = ErrorOf(c, resp, *out);
    out->clear();
    return s;
  }
  if (resp.status == 200 && (offset > 0 || out->size() > length)) {
    // A store that ignored the Range header sent the whole object.
    if (offset > out->size()) {
      out->clear();
      return bounds();
    }
    out->erase(0, offset);
    if (out->size() > length) out->resize(length);
  }
  return Status::OK();
}

Result<std::vector<ObjectInfo>> S3Store::List(std::string_view prefix) {
  std::vector<ObjectInfo> all;
  std::string token;
  aws::HttpResponse resp;
  for (;;) {
    Call c{"LIST", "GET", "", {{"list-type", "2"}, {"prefix", ObjectName(prefix)}}, {}, {}, nullptr, true};
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    if (options_.list_page_size > 0) {
      c.query.emplace_back("max-keys", std::to_string(options_.list_page_size));
    }
    VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
    if (resp.status >= 300) return ErrorOf(c, resp, resp.body);
    Result<s3::ListPage> page = s3::ParseListPage(resp.body);
    if (!page.ok()) {
      return Status::Corruption("LIST " + uri() + " prefix \"" + std::string(prefix) +
                                "\": " + page.status().message() + " [endpoint " + scheme_ +
                                "://" + host_ + "]");
    }
    for (s3::ListPage::Entry& e : page->entries) {
      if (!std::string_view(e.name).starts_with(prefix_)) continue;
      std::string key = e.name.substr(prefix_.size());
      // Objects virga could not have written (e.g. "dir/" folder markers) are skipped.
      if (!ValidateObjectKey(key).ok()) continue;
      all.push_back({std::move(key), e.size});
    }
    if (!page->truncated) break;
    if (page->next_token == token) {
      return Status::Corruption("LIST " + uri() + ": the listing repeats its continuation token");
    }
    token = std::move(page->next_token);
  }
  std::sort(all.begin(), all.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return all;
}

Status S3Store::Delete(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  Call c{"DELETE", "DELETE", std::string(key), {}, {}, {}, nullptr};
  aws::HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
  if (resp.status == 404 && s3::ParseError(resp.body).code != "NoSuchBucket") return Status::OK();
  if (resp.status < 300) bucket_known_ = true;
  if (resp.status >= 300) return ErrorOf(c, resp, resp.body);
  return Status::OK();
}

Result<ObjectInfo> S3Store::Head(std::string_view key, bool* found) {
  Call c{"HEAD", "HEAD", std::string(key), {}, {}, {}, nullptr};
  aws::HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Execute(c, &resp));
  *found = false;
  if (resp.status == 404) {
    // HEAD responses carry no error code: tell a missing bucket from a missing key once.
    if (!bucket_known_.load(std::memory_order_relaxed)) {
      Call b{"HEAD", "HEAD", "", {}, {}, {}, nullptr, true};
      aws::HttpResponse br;
      VIRGA_RETURN_IF_ERROR(Execute(b, &br));
      if (br.status == 404) {
        return Status::InvalidArgument("HEAD " + UriOf(key) + ": bucket \"" + bucket_ +
                                "\" does not exist [endpoint " + scheme_ + "://" + host_ + "]");
      }
      if (br.status < 300) bucket_known_ = true;
    }
    return ObjectInfo{std::string(key), 0};
  }
  if (resp.status >= 300) return ErrorOf(c, resp, resp.body);
  bucket_known_ = true;
  *found = true;
  return ObjectInfo{std::string(key), std::strtoull(std::string(resp.Header("content-length")).c_str(), nullptr, 10)};
}

Result<bool> S3Store::Exists(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  bool found = false;
  VIRGA_RETURN_IF_ERROR(Head(key, &found).status());
  return found;
}

Result<ObjectInfo> S3Store::Stat(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  bool found = false;
  VIRGA_ASSIGN_OR_RETURN(ObjectInfo info, Head(key, &found));
  if (!found) return Status::NotFound(std::string(key) + ": no such object in " + uri());
  return info;
}

}  // namespace virga
