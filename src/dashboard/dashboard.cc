// The dashboard's HTTP side (include/virga/dashboard.h) on cpp-httplib: auth
// in the pre-routing handler, then the page, the JSON API and /metrics.
#include "virga/dashboard.h"

#include <sys/socket.h>

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
#include "virga/train.h"

namespace virga {

using nlohmann::json;

struct Dashboard::Impl {
  DashboardOptions opt;
  dash::ApiOptions api;
  dash::RateTracker rates;
  httplib::Server http;
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
  http.Post(R"(/api/jobs/([^/]+)/kill)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!dash::ValidJobId(id)) return Error(res, 400, "bad job id");
    Status s = RequestKill(api.registry_dir, id);
    if (s.IsNotFound()) return Error(res, 404, s.message());
    if (!s.ok()) return Error(res, 500, s.ToString());
    Reply(res, 202, {{"job_id", id}, {"kill_requested", true}});
  });
  http.Post("/api/kill-all", [this](const httplib::Request&, httplib::Response& res) {
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
  httplib::Server& http = impl->http;
  http.set_payload_max_length(o.max_body_bytes);
  http.set_read_timeout(static_cast<time_t>(o.read_timeout_seconds), 0);
  http.set_write_timeout(static_cast<time_t>(o.read_timeout_seconds), 0);
  http.set_keep_alive_max_count(100);
  http.set_keep_alive_timeout(5);
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
