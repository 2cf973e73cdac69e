#include "dashboard/header_gate.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace virga::dash {
namespace {

using Clock = std::chrono::steady_clock;

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

}  // namespace

HeaderGate::HeaderGate(HeaderGateOptions options, std::function<void(int)> serve)
    : o_(options), serve_(std::move(serve)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  gate_ = std::thread([this] { GateLoop(); });
  for (uint32_t i = 0; i < std::max<uint32_t>(1, o_.workers); ++i)
    workers_.emplace_back([this] { WorkerLoop(); });
}

HeaderGate::~HeaderGate() {
  Stop();
  ::close(epoll_);
  ::close(wake_);
}

void HeaderGate::Admit(int fd) {
  std::string peer = PeerAddress(fd);
  {
    std::lock_guard<std::mutex> l(mu_);
    uint32_t& n = peers_[peer];
    if (stopping_ || n >= o_.max_per_peer || conns_.size() >= o_.max_total) {
      if (n == 0) peers_.erase(peer);
      ++counters_.rejected;
      ::close(fd);
      return;
    }
    ++n;
    ++counters_.admitted;
    conns_[fd] = Conn{std::move(peer), Clock::now() + o_.header_timeout, false};
    // Registered before the gate thread can see it in conns_ (it takes mu_).
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);  // the gate checks it at once (data may be there)
}

int HeaderGate::HeadState(int fd) const {
  std::string buf(o_.max_header_bytes, '\0');
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return -1;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  if (std::string_view(buf.data(), static_cast<size_t>(n)).find("\r\n\r\n") != std::string_view::npos)
    return 1;
  return static_cast<size_t>(n) >= o_.max_header_bytes ? -1 : 0;
}

void HeaderGate::Forget(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  if (auto p = peers_.find(it->second.peer); p != peers_.end() && --p->second == 0) peers_.erase(p);
  conns_.erase(it);
  ::close(fd);
}

void HeaderGate::GateLoop() {
  std::vector<epoll_event> events(64);
  std::vector<std::pair<int, uint32_t>> check;  // (fd, its epoll events; 0 after a wake)
  for (;;) {
    const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
    check.clear();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.fd == wake_) {
        uint64_t v;
        (void)!::read(wake_, &v, sizeof v);
        std::lock_guard<std::mutex> l(mu_);
        for (const auto& [fd, c] : conns_)
          if (!c.serving) check.emplace_back(fd, 0);  // newly admitted ones among them
      } else {
        const int fd = events[i].data.fd;  // (packed struct: copied out)
        const uint32_t ev = events[i].events;
        check.emplace_back(fd, ev);
      }
    }
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    for (const auto& [fd, ev] : check) {
      auto it = conns_.find(fd);
      if (it == conns_.end() || it->second.serving) continue;
      int state = HeadState(fd);
      // A peer that closed (or half-closed) without completing its head is
      // done: it must not keep its slot until the deadline.
      if (state == 0 && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) state = -1;
      if (state == 0) continue;
      ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
      const int served = state > 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
      if (served < 0) {
        Forget(fd);
        continue;
      }
      it->second.serving = true;
      it->second.deadline = Clock::now() + o_.request_timeout;
      ready_.emplace_back(fd, served);
      work_cv_.notify_one();
    }
    // Deadlines: waiting heads are dropped; served connections are shut down
    // (the server's reads and writes then fail and it closes its dup).
    const auto now = Clock::now();
    for (auto it = conns_.begin(); it != conns_.end();) {
      const int fd = it->first;
      Conn& c = it->second;
      ++it;
      if (now < c.deadline) continue;
      if (c.serving) {
        ::shutdown(fd, SHUT_RDWR);
        c.deadline = Clock::time_point::max();
        ++counters_.request_timeouts;
      } else {
        ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        ++counters_.header_timeouts;
        Forget(fd);
      }
    }
  }
}

void HeaderGate::WorkerLoop() {
  for (;;) {
    std::pair<int, int> next;
    {
      std::unique_lock<std::mutex> l(mu_);
      work_cv_.wait(l, [&] { return stopping_ || !ready_.empty(); });
      if (stopping_) return;
      next = ready_.front();
      ready_.pop_front();
    }
    serve_(next.second);  // closes the dup
    std::lock_guard<std::mutex> l(mu_);
    ++counters_.served;
    Forget(next.first);
  }
}

void HeaderGate::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
    // Served connections end at once; their workers finish and forget them.
    for (auto& [fd, c] : conns_) {
      if (c.serving) ::shutdown(fd, SHUT_RDWR);
    }
  }
  uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);
  work_cv_.notify_all();
  gate_.join();
  for (auto& t : workers_) t.join();
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [fd, served] : ready_) ::close(served);  // never served
  ready_.clear();
  while (!conns_.empty()) Forget(conns_.begin()->first);
}

HeaderGateCounters HeaderGate::counters() const {
  std::lock_guard<std::mutex> l(mu_);
  return counters_;
}

}  // namespace virga::dash
