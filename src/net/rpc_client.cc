// RpcClient: a synchronous Asio socket in non-blocking mode; every wait is a
// poll(2) bounded by a deadline, so connect, write and read all time out.
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

#include "net/rpc.h"

namespace virga::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string ErrnoMessage(int err) { return std::system_category().message(err); }

bool WouldBlock(const asio::error_code& ec) {
  return ec == asio::error::would_block || ec == asio::error::try_again;
}

}  // namespace

struct RpcClient::Impl {
  std::string host;
  uint16_t port = 0;
  ClientOptions options;
  asio::io_context ioc{1};  // never run: sockets need one, all I/O here is synchronous
  tcp::socket socket{ioc};
  FrameAssembler in;
  uint64_t next_id = 1;  // outstanding requests are [oldest, next_id)
  uint64_t oldest = 1;
  Status broken;  // the transport error that broke the connection; OK while usable
  std::array<std::byte, kHeaderSize> header{};
  std::string scratch;  // HELLO payload

  Impl(std::string_view h, uint16_t p, const ClientOptions& o)
      : host(h), port(p), options(o), in(o.max_payload) {}

  std::string Address() const { return fmt::format("{}:{}", host, port); }
  Status Fail(const Status& s);  // breaks the connection; returns s
  Status PollFd(short events, Clock::time_point deadline, std::string_view what);
  Status TcpConnect(const tcp::endpoint& ep, Clock::time_point deadline);
  Status ConnectOnce();
  Status ConnectWithRetries();
  Status WriteFrame(uint8_t opcode, uint64_t id, std::span<const std::byte> payload,
                    Clock::time_point deadline);
  Status ReadFrame(FrameHeader* h, std::span<const std::byte>* payload, Clock::time_point deadline,
                   std::string_view what);
};

Status RpcClient::Impl::Fail(const Status& s) {
  broken = s;
  asio::error_code ignored;
  socket.close(ignored);
  return s;
}

// Waits until the socket is ready for `events`. DeadlineExceeded names `what`.
Status RpcClient::Impl::PollFd(short events, Clock::time_point deadline, std::string_view what) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() > 0) {
    pollfd pfd{socket.native_handle(), events, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r > 0 || (r < 0 && errno == EINTR)) return Status::OK();  // the caller retries
    if (r < 0) return Status::IOError(fmt::format("{}: poll: {}", Address(), ErrnoMessage(errno)));
  }
  return Status::DeadlineExceeded(fmt::format("{}: {}", Address(), what));
}

// A non-blocking connect bounded by `deadline` (asio's own blocks without limit).
Status RpcClient::Impl::TcpConnect(const tcp::endpoint& ep, Clock::time_point deadline) {
  asio::error_code ec;
  socket.close(ec);
  socket.open(ep.protocol(), ec);
  if (!ec) socket.non_blocking(true, ec);
  if (ec) return Status::IOError(fmt::format("{}: socket: {}", Address(), ec.message()));
  const int fd = socket.native_handle();
  if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
    if (errno != EINPROGRESS)
      return Status::Unavailable(fmt::format("connect: {}", ErrnoMessage(errno)));
    pollfd pfd{fd, POLLOUT, 0};
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      const int r = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
      if (r > 0) break;
      if (r == 0) return Status::DeadlineExceeded("connect timed out");
      if (errno != EINTR) return Status::IOError(fmt::format("poll: {}", ErrnoMessage(errno)));
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return Status::Unavailable(fmt::format("connect: {}", ErrnoMessage(err)));
  }
  socket.set_option(tcp::no_delay(true), ec);
  return Status::OK();
}

// One attempt: resolve, connect (any address of the host), HELLO.
Status RpcClient::Impl::ConnectOnce() {
  const auto deadline = Clock::now() + options.connect_timeout;
  tcp::resolver resolver(ioc);
  asio::error_code ec;
  const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Status::Unavailable(fmt::format("resolve: {}", ec.message()));
  Status s = Status::Unavailable("no address");
  for (const auto& entry : endpoints) {
    s = TcpConnect(entry.endpoint(), deadline);
    if (s.ok()) break;
  }
  if (!s.ok()) return s;

  in.Reset();
  oldest = next_id;
  broken = Status::OK();
  PayloadWriter w(&scratch);
  w.Str(options.token);
  VIRGA_RETURN_IF_ERROR(WriteFrame(kOpHello, 0, AsBytes(scratch), deadline));
  FrameHeader h;
  std::span<const std::byte> payload;
  VIRGA_RETURN_IF_ERROR(ReadFrame(&h, &payload, deadline, "no reply to HELLO"));
  if (h.request_id != 0 || h.opcode != kOpHello)
    return Status::Corruption(fmt::format("{}: bad reply to HELLO", Address()));
  const auto code = static_cast<Status::Code>(h.status);
  if (code == Status::Code::kUnauthenticated)
    return Status::Unauthenticated(fmt::format("{}: token refused by the server", Address()));
  if (code != Status::Code::kOk)
    return Status(code, fmt::format("{}: HELLO failed: {}", Address(),
                                    std::string_view(reinterpret_cast<const char*>(payload.data()),
                                                     payload.size())));
  return Status::OK();
}

Status RpcClient::Impl::ConnectWithRetries() {
  const int attempts = std::max(1, options.connect_attempts);
  auto backoff = std::chrono::milliseconds(50);
  Status last;
  for (int i = 0; i < attempts; ++i) {
    if (i > 0) {
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
    last = ConnectOnce();
    if (last.ok()) return last;
    asio::error_code ignored;
    socket.close(ignored);
    if (last.code() == Status::Code::kUnauthenticated) break;  // retrying will not help
  }
  broken = last;
  if (last.code() == Status::Code::kUnauthenticated) return last;
  return Status::Unavailable(
      fmt::format("{}: unreachable after {} attempt(s): {}", Address(), attempts, last.message()));
}

// Header and payload in one gather write (sendmsg), resumed after partial writes.
Status RpcClient::Impl::WriteFrame(uint8_t opcode, uint64_t id, std::span<const std::byte> payload,
                                   Clock::time_point deadline) {
  if (payload.size() > UINT32_MAX)
    return Status::InvalidArgument(fmt::format("payload of {} bytes", payload.size()));
  FrameHeader h;
  h.opcode = opcode;
  h.request_id = id;
  h.payload_len = static_cast<uint32_t>(payload.size());
  EncodeHeader(h, header.data());
  const size_t total = kHeaderSize + payload.size();
  size_t done = 0;
  while (done < total) {
    std::array<asio::const_buffer, 2> bufs;
    if (done < kHeaderSize) {
      bufs = {asio::buffer(header.data() + done, kHeaderSize - done),
              asio::buffer(payload.data(), payload.size())};
    } else {
      bufs = {asio::buffer(payload.data() + (done - kHeaderSize), total - done),
              asio::const_buffer()};
    }
    asio::error_code ec;
    const size_t n = socket.write_some(bufs, ec);
    done += n;
    if (!ec) continue;
    if (!WouldBlock(ec))
      return Status::Unavailable(fmt::format("{}: write failed: {}", Address(), ec.message()));
    VIRGA_RETURN_IF_ERROR(PollFd(POLLOUT, deadline, "write timed out (server not reading)"));
  }
  return Status::OK();
}

Status RpcClient::Impl::ReadFrame(FrameHeader* h, std::span<const std::byte>* payload,
                                  Clock::time_point deadline, std::string_view what) {
  for (;;) {
    bool ready;
    if (Status s = in.Next(h, payload, &ready); !s.ok()) return s.WithContext(Address());
    if (ready) {
      if (!(h->flags & kFlagReply))
        return Status::Corruption(fmt::format("{}: server sent a request frame", Address()));
      return Status::OK();
    }
    const std::span<std::byte> space = in.WritableSpan();
    const auto spin_until = Clock::now() + options.spin;
    for (;;) {
      asio::error_code ec;
      const size_t n = socket.read_some(asio::buffer(space.data(), space.size()), ec);
      if (!ec) {
        in.Commit(n);
        break;
      }
      if (ec == asio::error::eof)
        return Status::Unavailable(fmt::format("{}: server closed the connection", Address()));
      if (!WouldBlock(ec))
        return Status::Unavailable(fmt::format("{}: read failed: {}", Address(), ec.message()));
      if (options.spin.count() > 0 && Clock::now() < spin_until) {
        std::this_thread::yield();  // see ServerOptions::spin: lets a co-located peer run
        continue;
      }
      VIRGA_RETURN_IF_ERROR(PollFd(POLLIN, deadline, what));
    }
  }
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RpcClient::~RpcClient() = default;

Result<std::unique_ptr<RpcClient>> RpcClient::Connect(std::string_view host, uint16_t port,
                                                      const ClientOptions& options) {
  auto impl = std::make_unique<Impl>(host, port, options);
  VIRGA_RETURN_IF_ERROR(impl->ConnectWithRetries());
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

Result<uint64_t> RpcClient::Send(uint8_t opcode, std::span<const std::byte> payload) {
  Impl& m = *impl_;
  if (!m.broken.ok())
    return Status::Unavailable(fmt::format("{}: connection broken ({}); call Reconnect",
                                           m.Address(), m.broken.ToString()));
  if (opcode == kOpHello) return Status::InvalidArgument("opcode 0 is reserved for HELLO");
  const uint64_t id = m.next_id;
  Status s = m.WriteFrame(opcode, id, payload, Clock::now() + m.options.call_timeout);
  if (!s.ok()) return m.Fail(s);
  ++m.next_id;
  return id;
}

Status RpcClient::Wait(uint64_t request_id, Reply* reply) {
  Impl& m = *impl_;
  if (!m.broken.ok())
    return Status::Unavailable(fmt::format("{}: connection broken ({}); call Reconnect",
                                           m.Address(), m.broken.ToString()));
  if (m.oldest == m.next_id || request_id != m.oldest)
    return Status::InvalidArgument(fmt::format("Wait({}): the oldest outstanding request is {}",
                                               request_id, m.oldest == m.next_id ? 0 : m.oldest));
  const std::string what = fmt::format("no reply to request {} within {} ms", request_id,
                                       m.options.call_timeout.count());
  Status s =
      m.ReadFrame(&reply->header, &reply->payload, Clock::now() + m.options.call_timeout, what);
  if (!s.ok()) return m.Fail(s);
  if (reply->header.request_id != request_id)
    return m.Fail(
        Status::Corruption(fmt::format("{}: reply to request {} while waiting for {}", m.Address(),
                                       reply->header.request_id, request_id)));
  ++m.oldest;
  if (reply->header.status == 0) {
    reply->status = Status::OK();
  } else {
    reply->status = Status(
        static_cast<Status::Code>(reply->header.status),
        std::string(reinterpret_cast<const char*>(reply->payload.data()), reply->payload.size()));
  }
  return reply->status;
}

Status RpcClient::Call(uint8_t opcode, std::span<const std::byte> payload, Reply* reply) {
  VIRGA_ASSIGN_OR_RETURN(const uint64_t id, Send(opcode, payload));
  return Wait(id, reply);
}

Status RpcClient::Reconnect() { return impl_->ConnectWithRetries(); }

std::string RpcClient::address() const { return impl_->Address(); }

uint64_t RpcClient::outstanding() const { return impl_->next_id - impl_->oldest; }

}  // namespace virga::net
