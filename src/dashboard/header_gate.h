// HeaderGate: keeps slow clients from starving an HTTP server whose worker
// threads block on their connection (cpp-httplib: one thread per connection,
// a read timeout per recv only, so a client sending a header line every few
// seconds holds a thread indefinitely).
//
// Accepted sockets are handed to Admit(). One gate thread waits (epoll, edge
// triggered, MSG_PEEK so nothing is consumed) until each connection's request
// head is complete ("\r\n\r\n"); only then is it given to one of `workers`
// threads, which run `serve` (the HTTP server's own processing, which closes
// the socket). So waiting clients cost a descriptor, not a thread. Limits:
//   - header_timeout: a head not complete this long after accept is dropped;
//   - request_timeout: a connection served this long is shut down (a slow
//     body, a client not reading its reply);
//   - max_header_bytes: a longer head is dropped;
//   - max_per_peer / max_total: connections (waiting plus served) per peer
//     address and in all; beyond them a new connection is closed at once.
// One request per connection (the server must not keep connections alive:
// a second request's head would bypass the gate).
//
// Thread-safe: Admit from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace virga::dash {

struct HeaderGateOptions {
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};
  size_t max_header_bytes = 16 << 10;
  uint32_t max_per_peer = 256;
  uint32_t max_total = 4096;
  uint32_t workers = 8;
};

struct HeaderGateCounters {
  uint64_t admitted = 0, served = 0, rejected = 0, header_timeouts = 0, request_timeouts = 0;
};

class HeaderGate {
 public:
  HeaderGate(HeaderGateOptions options, std::function<void(int fd)> serve);
  ~HeaderGate();  // Stop()
  HeaderGate(const HeaderGate&) = delete;
  HeaderGate& operator=(const HeaderGate&) = delete;

  // Takes ownership of `fd` (closes it if it is refused or dropped).
  void Admit(int fd);
  // Drops waiting connections, shuts down served ones, joins the threads.
  void Stop();
  HeaderGateCounters counters() const;

 private:
  // Keyed by the accepted descriptor, which the gate keeps open until it
  // forgets the connection (so its number is not reused meanwhile); the
  // server is given a dup of it, which the server closes.
  struct Conn {
    std::string peer;
    std::chrono::steady_clock::time_point deadline;
    bool serving = false;
  };
  void GateLoop();
  void WorkerLoop();
  // REQUIRES: mu_ held. Forgets `fd` (its per-peer count) and closes it.
  void Forget(int fd);
  // Whether fd's request head is complete (1), incomplete (0), or the
  // connection is bad or done (-1: EOF, error, head too long).
  int HeadState(int fd) const;

  const HeaderGateOptions o_;
  const std::function<void(int)> serve_;
  int epoll_ = -1, wake_ = -1;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::map<int, Conn> conns_;              // GUARDED_BY(mu_)
  std::map<std::string, uint32_t> peers_;  // GUARDED_BY(mu_)
  std::deque<std::pair<int, int>> ready_;  // GUARDED_BY(mu_): (fd, its dup to serve)
  bool stopping_ = false;                  // GUARDED_BY(mu_)
  HeaderGateCounters counters_;            // GUARDED_BY(mu_)
  std::thread gate_;
  std::vector<std::thread> workers_;
};

}  // namespace virga::dash
