#include "net/shim.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>

namespace virga::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 << 10;

void NoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Sleeps until `t`: the OS sleeps to within ~100 us, then a spin.
void WaitUntil(Clock::time_point t) {
  const auto coarse = t - std::chrono::microseconds(100);
  if (Clock::now() < coarse) std::this_thread::sleep_until(coarse);
  while (Clock::now() < t) {
  }
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

// One proxied connection: two directions, each a reader and a writer thread
// around a queue of stamped chunks.
struct NetShim::Link {
  struct Chunk {
    Clock::time_point due;
    std::string bytes;
  };
  struct Direction {
    int from = -1, to = -1;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Chunk> queue;  // GUARDED_BY(mu)
    bool eof = false;         // GUARDED_BY(mu)
    std::thread reader, writer;
  };

  Link(int client, int upstream, const ShimOptions& o, std::atomic<uint64_t>* up,
       std::atomic<uint64_t>* down)
      : client_fd(client), upstream_fd(upstream), opt(o) {
    dirs[0].from = client;
    dirs[0].to = upstream;
    dirs[1].from = upstream;
    dirs[1].to = client;
    for (int d = 0; d < 2; ++d) {
      std::atomic<uint64_t>* counter = d == 0 ? up : down;
      dirs[d].reader = std::thread([this, d] { Read(&dirs[d]); });
      dirs[d].writer = std::thread([this, d, counter] { Write(&dirs[d], counter); });
    }
  }
  ~Link() {
    ::shutdown(client_fd, SHUT_RDWR);
    ::shutdown(upstream_fd, SHUT_RDWR);
    for (Direction& d : dirs) {
      {
        std::lock_guard<std::mutex> l(d.mu);
        d.eof = true;
      }
      d.cv.notify_all();
      d.reader.join();
      d.writer.join();
    }
    ::close(client_fd);
    ::close(upstream_fd);
  }

  void Read(Direction* d) {
    std::string buf(kChunk, '\0');
    for (;;) {
      const ssize_t n = ::recv(d->from, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> l(d->mu);
      if (n <= 0) {
        d->eof = true;
        d->cv.notify_all();
        return;
      }
      d->queue.push_back({Clock::now() + opt.delay, std::string(buf.data(), static_cast<size_t>(n))});
      d->cv.notify_all();
    }
  }

  void Write(Direction* d, std::atomic<uint64_t>* counter) {
    Clock::time_point link_free = Clock::now();
    for (;;) {
      Chunk c;
      {
        std::unique_lock<std::mutex> l(d->mu);
        d->cv.wait(l, [&] { return !d->queue.empty() || d->eof; });
        if (d->queue.empty()) {
          ::shutdown(d->to, SHUT_WR);  // pass the end on, after everything before it
          return;
        }
        c = std::move(d->queue.front());
        d->queue.pop_front();
      }
      Clock::time_point at = c.due;
      if (opt.bytes_per_second > 0) {
        at = std::max(at, link_free);
        link_free = at + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(c.bytes.size() / opt.bytes_per_second));
      }
      WaitUntil(at);
      if (!WriteAll(d->to, c.bytes.data(), c.bytes.size())) {
        ::shutdown(d->from, SHUT_RDWR);  // the other side is gone: end the reader too
        return;
      }
      counter->fetch_add(c.bytes.size(), std::memory_order_relaxed);
    }
  }

  const int client_fd, upstream_fd;
  const ShimOptions opt;
  Direction dirs[2];
};

NetShim::NetShim(ShimOptions options) : o_(std::move(options)) {}

NetShim::~NetShim() { Stop(); }

Status NetShim::Start() {
  const size_t colon = o_.target.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("shim: target '" + o_.target + "' is not host:port");
  }
  target_host_ = o_.target.substr(0, colon);
  const long port = std::strtol(o_.target.c_str() + colon + 1, nullptr, 10);
  if (port <= 0 || port > 65535) {
    return Status::InvalidArgument("shim: target '" + o_.target + "': bad port");
  }
  target_port_ = static_cast<uint16_t>(port);
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::IOError(std::string("shim: socket: ") + std::strerror(errno));
  int one = 1;
  (void)::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(o_.port);
  if (::inet_pton(AF_INET, o_.listen.c_str(), &a.sin_addr) != 1) {
    return Status::InvalidArgument("shim: listen address '" + o_.listen + "' is not IPv4");
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 128) != 0) {
    return Status::IOError("shim: listen on " + o_.listen + ":" + std::to_string(o_.port) + ": " +
                           std::strerror(errno));
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::OK();
}

void NetShim::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int upstream = -1;
    if (::getaddrinfo(target_host_.c_str(), std::to_string(target_port_).c_str(), &hints, &res) == 0) {
      upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (upstream >= 0 && ::connect(upstream, res->ai_addr, res->ai_addrlen) != 0) {
        ::close(upstream);
        upstream = -1;
      }
      ::freeaddrinfo(res);
    }
    if (upstream < 0) {  // the target refuses: so does the shim
      ::close(client);
      continue;
    }
    NoDelay(client);
    NoDelay(upstream);
    connections_.fetch_add(1);
    std::lock_guard<std::mutex> l(mu_);
    links_.push_back(std::make_unique<Link>(client, upstream, o_, &up_, &down_));
  }
}

void NetShim::Stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  std::lock_guard<std::mutex> l(mu_);
  links_.clear();
}

}  // namespace virga::net
