// The dashboard's HTTP side (include/virga/dashboard.h) on cpp-httplib: auth
// in the pre-routing handler, then the page, the JSON API and /metrics.
#include "virga/dashboard.h"

#include <cstdlib>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "dashboard/api.h"
#include "dashboard/assets.h"
#include "dashboard/auth.h"
#include "dashboard/header_gate.h"
#include "virga/train.h"

namespace virga {

using nlohmann::json;

namespace {

// An httplib::Stream over a connected socket, with the server's timeouts per
// read and write (the gate bounds the whole request).
class FdStream final : public httplib::Stream {
 public:
  FdStream(int fd, int read_timeout_ms, int write_timeout_ms)
      : fd_(fd), read_ms_(read_timeout_ms), write_ms_(write_timeout_ms) {}
  bool is_readable() const override { return Wait(POLLIN, read_ms_); }
  bool is_writable() const override { return Wait(POLLOUT, write_ms_); }
  ssize_t read(char* ptr, size_t size) override {
    if (!is_readable()) return -1;
    ssize_t n;
    do n = ::recv(fd_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  bool Wait(short events, int timeout_ms) const {
    pollfd p{fd_, events, 0};
    int n;
    do n = ::poll(&p, 1, timeout_ms);
    while (n < 0 && errno == EINTR);
    return n > 0 && (p.revents & (events | POLLHUP)) != 0;
  }
  template <typename Get>
  void Address(Get get, std::string& ip, int& port) const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    char buf[INET6_ADDRSTRLEN] = "";
    port = 0;
    if (get(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
        port = ntohs(a->sin_port);
      } else if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
        port = ntohs(a->sin6_port);
      }
    }
    ip = buf;
  }
  const int fd_, read_ms_, write_ms_;
};

// httplib's server whose accepted connections go through a dash::HeaderGate:
// a connection reaches a serving thread only with its request head complete
// (slow clients hold a descriptor, not a thread), and is served one request.
class GatedServer : public httplib::Server {
 public:
  void Gate(dash::HeaderGateOptions o, int read_timeout_ms, int write_timeout_ms) {
    gate_ = std::make_unique<dash::HeaderGate>(o, [this, read_timeout_ms, write_timeout_ms](int fd) {
      FdStream stream(fd, read_timeout_ms, write_timeout_ms);
      bool closed = false;
      (void)process_request(stream, /*close_connection=*/true, closed, nullptr);
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    });
  }
  void StopGate() {
    if (gate_) gate_->Stop();
  }
  // httplib listens with a backlog of 5: a burst of connections (a browser
  // opens six; slow clients many) would have SYNs dropped and retried a
  // second later. Linux takes a second listen() as a new backlog.
  void WidenBacklog(int n) { ::listen(svr_sock_, n); }

 private:
  // Called by httplib for each accepted connection, on its thread pool.
  bool process_and_close_socket(socket_t sock) override {
    gate_->Admit(sock);
    return true;
  }
  std::unique_ptr<dash::HeaderGate> gate_;
};

}  // namespace

struct Dashboard::Impl {
  DashboardOptions opt;
  bool BodyTooLarge(const httplib::Request& req) const;
  dash::ApiOptions api;
  dash::RateTracker rates;
  GatedServer http;
  std::thread thread;
  uint16_t port = 0;
  std::mutex stop_mu;  // serializes Stop()
  std::mutex mu;
  std::condition_variable stopped_cv;
  bool stopped = false;  // GUARDED_BY(mu)

  void Routes();
  httplib::Server::HandlerResponse Authorize(const httplib::Request& req, httplib::Response& res);
  // The registry's jobs (newest first), each fed to the rate tracker; false
  // (with a 500 reply written) when the registry cannot be read.
  bool Jobs(httplib::Response& res, std::vector<JobEntry>* jobs);
  const JobEntry* FindJob(const std::vector<JobEntry>& jobs, const std::string& id);
};

namespace {

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned b = rd() & 0xff;
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void Error(httplib::Response& res, int status, const std::string& message) {
  Reply(res, status, {{"error", message}});
}

}  // namespace

httplib::Server::HandlerResponse Dashboard::Impl::Authorize(const httplib::Request& req,
                                                            httplib::Response& res) {
  using R = httplib::Server::HandlerResponse;
  dash::Credentials c;
  c.authorization = req.get_header_value("Authorization");
  c.x_token = req.get_header_value("X-Virga-Token");
  c.cookie = req.get_header_value("Cookie");
  c.query_token = req.get_param_value("token");
  const dash::AuthVia via = dash::Authenticate(opt.token, port, c);
  if (via == dash::AuthVia::kNone) {
    res.set_header("WWW-Authenticate", "Bearer realm=\"virga dashboard\"");
    Error(res, 401, "unauthorized: open the URL printed by `virga dashboard` (it carries "
                    "?token=...), or send Authorization: Bearer <token>");
    return R::Handled;
  }
  if (req.method == "POST" &&
      !dash::SameOrigin(req.get_header_value("Origin"), req.get_header_value("Host"))) {
    Error(res, 403, "cross-origin request refused");
    return R::Handled;
  }
  if (via == dash::AuthVia::kQuery && req.method == "GET" && req.path == "/") {
    // Keep the token in a cookie and take it out of the address bar.
    res.set_header("Set-Cookie", dash::CookieName(port) + "=" + opt.token +
                                     "; Path=/; HttpOnly; SameSite=Strict");
    res.set_redirect("/", 303);
    return R::Handled;
  }
  return R::Unhandled;
}

bool Dashboard::Impl::Jobs(httplib::Response& res, std::vector<JobEntry>* jobs) {
  auto listed = ListJobs(api.registry_dir);
  if (!listed.ok()) {
    Error(res, 500, listed.status().ToString());
    return false;
  }
  *jobs = std::move(*listed);
  for (const JobEntry& e : *jobs) {
    if (e.state != "running" || !e.alive) continue;
    auto s = json::parse(e.status_json, nullptr, /*allow_exceptions=*/false);
    if (s.is_object()) rates.Observe(s);
  }
  return true;
}

const JobEntry* Dashboard::Impl::FindJob(const std::vector<JobEntry>& jobs, const std::string& id) {
  for (const JobEntry& e : jobs) {
    if (e.job_id == id) return &e;
  }
  return nullptr;
}

// A body the routes that read none would not have accepted either (opt.max_body_bytes).
bool Dashboard::Impl::BodyTooLarge(const httplib::Request& req) const {
  if (req.has_header("Transfer-Encoding")) return true;  // chunked: of unknown size
  if (!req.has_header("Content-Length")) return false;
  const std::string v = req.get_header_value("Content-Length");
  return v.size() > 18 || std::strtoull(v.c_str(), nullptr, 10) > opt.max_body_bytes;
}

void Dashboard::Impl::Routes() {
  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return Authorize(req, res); });
  http.set_default_headers({{"Cache-Control", "no-store"},
                            {"X-Content-Type-Options", "nosniff"},
                            {"X-Frame-Options", "DENY"},
                            {"Referrer-Policy", "no-referrer"}});
  for (const char* path : {"/", "/app.js", "/style.css"}) {
    http.Get(path, [](const httplib::Request& req, httplib::Response& res) {
      const dash::Asset* a = dash::FindAsset(req.path);
      if (!a) return Error(res, 404, "no such file");
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
      res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->content_type);
    });
  }
  http.Get("/api/info", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"registry", api.registry_dir}, {"port", port}});
  });
  http.Get("/api/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    std::vector<JobEntry> jobs;
    if (!Jobs(res, &jobs)) return;
    Reply(res, 200, dash::JobsJson(jobs, api, req.get_param_value("history") == "1"));
  });
  http.Get(R"(/api/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!dash::ValidJobId(id)) return Error(res, 400, "bad job id");
    std::vector<JobEntry> jobs;
    if (!Jobs(res, &jobs)) return;
    const JobEntry* e = FindJob(jobs, id);
    if (!e) return Error(res, 404, "job '" + id + "' is not registered");
    Reply(res, 200, dash::JobDetailJson(*e, api, rates));
  });
  // The kill routes take a ContentReader they never call: cpp-httplib then reads no body, so an
  // empty POST without Content-Length (curl -X POST) is answered at once instead of waiting
  // for a body until its read timeout and answering 400.
  http.Post(R"(/api/jobs/([^/]+)/kill)", [this](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader&) {
    if (BodyTooLarge(req)) return Error(res, 413, "request body too large");
    const std::string id = req.matches[1];
    if (!dash::ValidJobId(id)) return Error(res, 400, "bad job id");
    Status s = RequestKill(api.registry_dir, id);
    if (s.IsNotFound()) return Error(res, 404, s.message());
    if (!s.ok()) return Error(res, 500, s.ToString());
    Reply(res, 202, {{"job_id", id}, {"kill_requested", true}});
  });
  http.Post("/api/kill-all", [this](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader&) {
    if (BodyTooLarge(req)) return Error(res, 413, "request body too large");
    std::vector<JobEntry> jobs;
    if (!Jobs(res, &jobs)) return;
    json killed = json::array(), failed = json::object();
    for (const JobEntry& e : jobs) {
      if (!e.alive || (e.state != "running" && e.state != "starting")) continue;
      Status s = RequestKill(api.registry_dir, e.job_id);
      if (s.ok()) {
        killed.push_back(e.job_id);
      } else {
        failed[e.job_id] = s.ToString();
      }
    }
    Reply(res, failed.empty() ? 202 : 500, {{"kill_requested", killed}, {"failed", failed}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<JobEntry> jobs;
    if (!Jobs(res, &jobs)) return;
    res.set_content(dash::MetricsText(jobs, api, rates), "text/plain; version=0.0.4; charset=utf-8");
  });
}

Dashboard::Dashboard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dashboard::~Dashboard() { Stop(); }

Result<std::unique_ptr<Dashboard>> Dashboard::Start(DashboardOptions options) {
  if (options.bind.empty()) return Status::InvalidArgument("dashboard: --bind must not be empty");
  if (options.max_body_bytes == 0 || options.max_history_points < 2 || options.max_jobs == 0) {
    return Status::InvalidArgument(
        "dashboard: max_body_bytes and max_jobs must be >= 1, max_history_points >= 2");
  }
  if (options.token.empty()) options.token = RandomHex(16);
  if (options.registry_dir.empty()) options.registry_dir = DefaultRegistryDir();
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  const DashboardOptions& o = impl->opt;
  impl->api.registry_dir = o.registry_dir;
  impl->api.max_history_points = o.max_history_points;
  impl->api.max_jobs = o.max_jobs;
  GatedServer& http = impl->http;
  http.set_payload_max_length(o.max_body_bytes);
  http.set_read_timeout(static_cast<time_t>(o.read_timeout_seconds), 0);
  http.set_write_timeout(static_cast<time_t>(o.read_timeout_seconds), 0);
  // One request per connection (GatedServer): every request head passes the gate.
  dash::HeaderGateOptions gate;
  gate.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.header_timeout_seconds * 1000));
  gate.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(o.request_timeout_seconds * 1000));
  gate.max_per_peer = o.max_connections_per_peer;
  const int io_ms = static_cast<int>(o.read_timeout_seconds * 1000);
  http.Gate(gate, io_ms, io_ms);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a
  // second dashboard share a busy port instead of failing.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl->Routes();
  int port = o.port;
  if (o.port == 0) {
    port = http.bind_to_any_port(o.bind);
  } else if (!http.bind_to_port(o.bind, o.port)) {
    port = -1;
  }
  if (port <= 0) {
    return Status::Unavailable("dashboard: cannot listen on " + o.bind + ":" +
                               std::to_string(o.port) +
                               (o.port ? " (in use? --port 0 picks a free one)" : ""));
  }
  impl->port = static_cast<uint16_t>(port);
  http.WidenBacklog(SOMAXCONN);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->http.listen_after_bind(); });
  // stop() before the listen loop runs would be lost (and Stop() would hang).
  for (int i = 0; i < 5000 && !http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(impl)));
}

void Dashboard::Stop() {
  if (!impl_) return;
  std::lock_guard stopping(impl_->stop_mu);
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->http.StopGate();
  std::lock_guard lock(impl_->mu);
  impl_->stopped = true;
  impl_->stopped_cv.notify_all();
}

void Dashboard::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->stopped_cv.wait(lock, [&] { return impl_->stopped; });
}

uint16_t Dashboard::port() const { return impl_->port; }
const std::string& Dashboard::token() const { return impl_->opt.token; }
const std::string& Dashboard::registry_dir() const { return impl_->opt.registry_dir; }

std::string Dashboard::url() const {
  std::string host = impl_->opt.bind;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(impl_->port) + "/?token=" + impl_->opt.token;
}

}  // namespace virga
