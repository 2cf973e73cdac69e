// A Lambda Runtime API on 127.0.0.1 for tests and `virga bench
// lambda-runtime` (cpp-httplib): `next` hands out queued events, posts are
// recorded. Not for production: it checks nothing a real service checks.
//
// `next` with no event queued waits up to idle_wait for one, then answers
// 500 ("no more events"), which ends a runtime's loop.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace virga::lambda {

class FakeRuntimeApi {
 public:
  using Clock = std::chrono::steady_clock;

  struct Event {
    std::string request_id;
    std::string body;
    int64_t deadline_ms = 0;  // Unix epoch ms; 0: no header
    std::string trace_id;     // "": no header
  };
  struct Post {
    std::string kind;  // "response", "error" or "init/error"
    std::string request_id;
    std::string body;
    std::string error_type;  // the Lambda-Runtime-Function-Error-Type header
    Clock::time_point at;    // when it arrived (its body read)
  };

  explicit FakeRuntimeApi(std::chrono::milliseconds idle_wait = std::chrono::milliseconds{5'000});
  ~FakeRuntimeApi();
  FakeRuntimeApi(const FakeRuntimeApi&) = delete;
  FakeRuntimeApi& operator=(const FakeRuntimeApi&) = delete;

  std::string host_port() const;  // "127.0.0.1:<port>", for AWS_LAMBDA_RUNTIME_API
  std::string base_url() const;   // "http://127.0.0.1:<port>/2018-06-01/runtime/"

  void Push(Event event);
  // The next `count` posts are answered `status` (and recorded in posts_failed).
  void FailPosts(int count, int status);

  // Waits until at least `n` posts were accepted (or `timeout`); returns them all.
  std::vector<Post> WaitForPosts(size_t n, std::chrono::milliseconds timeout);
  // Waits until `next` was asked at least `n` times; returns when the n-th
  // request arrived, or nullopt-like Clock::time_point{} after `timeout`.
  Clock::time_point WaitForNext(size_t n, std::chrono::milliseconds timeout);
  // When the event with this request id was handed out; {} if it was not.
  Clock::time_point ServedAt(const std::string& request_id) const;
  int posts_failed() const;

 private:
  const std::chrono::milliseconds idle_wait_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> queue_;                                        // GUARDED_BY(mu_)
  std::vector<Post> posts_;                                        // GUARDED_BY(mu_)
  std::vector<Clock::time_point> next_arrivals_;                   // GUARDED_BY(mu_)
  std::vector<std::pair<std::string, Clock::time_point>> served_;  // GUARDED_BY(mu_)
  int fail_count_ = 0;                                             // GUARDED_BY(mu_)
  int fail_status_ = 500;                                          // GUARDED_BY(mu_)
  int posts_failed_ = 0;                                           // GUARDED_BY(mu_)
  bool stopping_ = false;                                          // GUARDED_BY(mu_)
};

}  // namespace virga::lambda
