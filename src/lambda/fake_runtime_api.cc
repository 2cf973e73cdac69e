#include "lambda/fake_runtime_api.h"

#include <httplib.h>

namespace virga::lambda {

FakeRuntimeApi::FakeRuntimeApi(std::chrono::milliseconds idle_wait)
    : idle_wait_(idle_wait), server_(std::make_unique<httplib::Server>()) {
  server_->set_tcp_nodelay(true);  // as a real service: no Nagle delay between headers and body
  server_->set_keep_alive_max_count(1'000'000);
  server_->set_keep_alive_timeout(600);
  server_->Get("/2018-06-01/runtime/invocation/next", [this](const httplib::Request&,
                                                             httplib::Response& res) {
    std::unique_lock<std::mutex> lock(mu_);
    next_arrivals_.push_back(Clock::now());
    cv_.notify_all();
    if (!cv_.wait_for(lock, idle_wait_, [this] { return !queue_.empty() || stopping_; }) ||
        queue_.empty()) {
      res.status = 500;
      res.set_content("no more events", "text/plain");
      return;
    }
    Event e = std::move(queue_.front());
    queue_.pop_front();
    res.set_header("Lambda-Runtime-Aws-Request-Id", e.request_id);
    if (e.deadline_ms > 0) {
      res.set_header("Lambda-Runtime-Deadline-Ms", std::to_string(e.deadline_ms));
    }
    if (!e.trace_id.empty()) res.set_header("Lambda-Runtime-Trace-Id", e.trace_id);
    res.set_header("Lambda-Runtime-Invoked-Function-Arn",
                   "arn:aws:lambda:us-east-1:000000000000:function:virga");
    res.set_content(e.body, "application/json");
    served_.emplace_back(e.request_id, Clock::now());
  });
  auto record = [this](const std::string& kind) {
    return [this, kind](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_count_ > 0) {
        --fail_count_;
        ++posts_failed_;
        res.status = fail_status_;
        res.set_content("{\"errorType\":\"Fake.Failure\"}", "application/json");
        return;
      }
      Post p;
      p.kind = kind;
      if (req.matches.size() > 1) p.request_id = req.matches[1];
      p.body = req.body;
      p.error_type = req.get_header_value("Lambda-Runtime-Function-Error-Type");
      p.at = Clock::now();
      posts_.push_back(std::move(p));
      cv_.notify_all();
      res.status = 202;
      res.set_content("{\"status\":\"OK\"}", "application/json");
    };
  };
  server_->Post(R"(/2018-06-01/runtime/invocation/([^/]+)/response)", record("response"));
  server_->Post(R"(/2018-06-01/runtime/invocation/([^/]+)/error)", record("error"));
  server_->Post("/2018-06-01/runtime/init/error", record("init/error"));
  port_ = server_->bind_to_any_port("127.0.0.1");
  if (port_ <= 0) return;  // no port: every request of a client fails
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before the accept loop runs would be lost, and the destructor would hang.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

FakeRuntimeApi::~FakeRuntimeApi() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.clear();
    stopping_ = true;
    cv_.notify_all();
  }
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

std::string FakeRuntimeApi::host_port() const { return "127.0.0.1:" + std::to_string(port_); }

std::string FakeRuntimeApi::base_url() const {
  return "http://" + host_port() + "/2018-06-01/runtime/";
}

void FakeRuntimeApi::Push(Event event) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(std::move(event));
  cv_.notify_all();
}

void FakeRuntimeApi::FailPosts(int count, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_count_ = count;
  fail_status_ = status;
}

std::vector<FakeRuntimeApi::Post> FakeRuntimeApi::WaitForPosts(size_t n,
                                                               std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return posts_.size() >= n; });
  return posts_;
}

FakeRuntimeApi::Clock::time_point FakeRuntimeApi::WaitForNext(size_t n,
                                                              std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return next_arrivals_.size() >= n; })) return {};
  return next_arrivals_[n - 1];
}

FakeRuntimeApi::Clock::time_point FakeRuntimeApi::ServedAt(const std::string& request_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, at] : served_) {
    if (id == request_id) return at;
  }
  return {};
}

int FakeRuntimeApi::posts_failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return posts_failed_;
}

}  // namespace virga::lambda
