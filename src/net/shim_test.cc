#include "net/shim.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace virga::net {
namespace {

using Clock = std::chrono::steady_clock;

// A one-connection echo server on 127.0.0.1.
class Echo {
 public:
  Echo() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char buf[65536];
      for (;;) {
        const ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        ssize_t off = 0;
        while (off < n) {
          const ssize_t w = ::send(c, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) break;
          off += w;
        }
      }
      ::close(c);
    });
  }
  ~Echo() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

int Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool RecvAll(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

TEST(NetShim, AddsItsDelayToEveryRoundTrip) {
  Echo echo;
  ShimOptions o;
  o.target = "127.0.0.1:" + std::to_string(echo.port());
  o.delay = std::chrono::microseconds(250);
  NetShim shim(o);
  ASSERT_TRUE(shim.Start().ok());
  const int fd = Connect(shim.port());
  std::vector<double> rtt;
  char c = 'x';
  for (int i = 0; i < 40; ++i) {
    const auto t0 = Clock::now();
    ASSERT_EQ(::send(fd, &c, 1, 0), 1);
    ASSERT_TRUE(RecvAll(fd, &c, 1));
    rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(rtt.begin(), rtt.end());
  EXPECT_GE(rtt.front(), 500.0);          // both directions delayed, every time
  EXPECT_LT(rtt[rtt.size() / 2], 5000.0);  // and not by much more (generous: a loaded CI machine)
  EXPECT_EQ(shim.connections(), 1u);
  EXPECT_EQ(shim.bytes_up(), 40u);
  ::close(fd);
}

TEST(NetShim, CapsTheBandwidth) {
  Echo echo;
  ShimOptions o;
  o.target = "127.0.0.1:" + std::to_string(echo.port());
  o.bytes_per_second = 20e6;
  NetShim shim(o);
  ASSERT_TRUE(shim.Start().ok());
  const int fd = Connect(shim.port());
  const std::string block(2 << 20, 'a');  // 2 MiB each way: at least 0.1 s at 20 MB/s
  const auto t0 = Clock::now();
  std::thread sender([&] { ASSERT_EQ(::send(fd, block.data(), block.size(), 0), static_cast<ssize_t>(block.size())); });
  std::string back(block.size(), '\0');
  ASSERT_TRUE(RecvAll(fd, back.data(), back.size()));
  sender.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(back, block);
  EXPECT_GE(secs, block.size() / 20e6 * 0.95);
  EXPECT_LT(secs, 2.0);
  ::close(fd);
}

TEST(NetShim, BadTargetsAreRefused) {
  ShimOptions o;
  o.target = "nohostport";
  NetShim a(o);
  EXPECT_TRUE(a.Start().IsInvalidArgument());
  o.target = "127.0.0.1:99999";
  NetShim b(o);
  EXPECT_TRUE(b.Start().IsInvalidArgument());
}

}  // namespace
}  // namespace virga::net
