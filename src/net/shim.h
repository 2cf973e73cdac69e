// NetShim: a TCP proxy that adds a fixed one-way delay and a bandwidth cap
// to every connection through it, so benchmarks and tests can take their
// figures at a cloud function's network (hundreds of microseconds of round
// trip, ~60 MB/s) on one machine, whose kernel has no netem.
//
// Each accepted connection gets its own upstream connection to `target` and
// two pumps (one per direction). A pump reads what arrives, stamps it with
// arrival + delay, and writes it out no earlier than that stamp and no
// faster than the cap (a token rule: a chunk of n bytes occupies the link
// for n / rate seconds after the previous one). TCP_NODELAY on every socket.
// Delays are kept by sleeping to within ~100 us and spinning the rest, so a
// 250 us one-way delay is honoured to a few microseconds (the spin costs CPU
// on a shim that carries traffic: take figures with the shim on its own core
// when the machine has one).
//
// Thread safety: Start/Stop from one thread; everything else is internal.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "virga/status.h"

namespace virga::net {

struct ShimOptions {
  std::string listen = "127.0.0.1";  // address to listen on
  uint16_t port = 0;                 // 0: any free port
  std::string target;                // "host:port" to forward to (required)
  std::chrono::microseconds delay{0};  // one way, each direction (round trip: twice this)
  double bytes_per_second = 0;         // per direction per connection; 0: unlimited
};

class NetShim {
 public:
  explicit NetShim(ShimOptions options);
  ~NetShim();  // Stop()
  NetShim(const NetShim&) = delete;
  NetShim& operator=(const NetShim&) = delete;

  // Binds and starts accepting. InvalidArgument for a bad target, IOError
  // naming the address if it cannot listen.
  Status Start();
  // Closes the listener and every connection, joins the threads.
  void Stop();
  uint16_t port() const { return port_; }
  // Bytes carried so far, client -> target and target -> client.
  uint64_t bytes_up() const { return up_.load(); }
  uint64_t bytes_down() const { return down_.load(); }
  uint64_t connections() const { return connections_.load(); }

 private:
  struct Link;
  void AcceptLoop();

  const ShimOptions o_;
  std::string target_host_;
  uint16_t target_port_ = 0;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Link>> links_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> up_{0}, down_{0}, connections_{0};
};

}  // namespace virga::net
