// RpcClient: a synchronous Asio socket. Connect is non-blocking, bounded by
// poll(2). Once connected the socket blocks, with SO_RCVTIMEO / SO_SNDTIMEO
// bounding each recv / sendmsg: a request costs one sendmsg and (usually) one
// recv, instead of a recv that finds nothing, a poll and a second recv. The
// deadline of a call is checked between system calls, and the socket
// timeout never outlasts it (to the millisecond). Over TLS the same blocking
// socket carries an OpenSSL session (SSL_read / SSL_write; a socket timeout
// comes back as SSL_ERROR_WANT_*, and the deadline decides).
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

#include "net/rpc.h"
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace virga::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string ErrnoMessage(int err) { return std::system_category().message(err); }

}  // namespace

struct RpcClient::Impl {
  std::string host;
  uint16_t port = 0;
  ClientOptions options;
  asio::io_context ioc{1};  // never run: sockets need one, all I/O here is synchronous
  tcp::socket socket{ioc};
  FrameAssembler in;
  uint64_t bytes_sent = 0, bytes_received = 0;  // on the wire, frames and headers, every socket
  uint64_t next_id = 1;  // outstanding requests are [oldest, next_id)
  uint64_t oldest = 1;
  Status broken;  // the transport error that broke the connection; OK while usable
  std::array<std::byte, kHeaderSize> header{};
  std::string held;     // frames of Hold(), written before the next frame or Wait
  std::string scratch;  // HELLO payload
  std::chrono::milliseconds sock_timeout{0};  // SO_RCVTIMEO / SO_SNDTIMEO now set (0: none)
  std::unique_ptr<asio::ssl::context> tls;   // options.tls_ca_pem, made at the first connect
  SSL* ssl = nullptr;                         // the TLS session of `socket` (null: plain TCP)
  std::string tls_out;                        // a write's frames in one buffer (one record)

  Impl(std::string_view h, uint16_t p, const ClientOptions& o)
      : host(h), port(p), options(o), in(o.max_payload) {}
  ~Impl() { EndTls(); }
  void EndTls() {
    if (ssl != nullptr) SSL_free(ssl);
    ssl = nullptr;
  }
  Status TlsHandshake(Clock::time_point deadline);
  // OpenSSL's reason for a failed SSL_read/SSL_write (ret, SSL_get_error = e).
  std::string TlsError(int e) const;

  std::string Address() const { return fmt::format("{}:{}", host, port); }
  Status Fail(const Status& s);  // breaks the connection; returns s
  Status Broken() const {        // what a call on a broken connection returns
    return Status::Unavailable(
        fmt::format("{}: connection broken ({}); call Reconnect", Address(), broken.ToString()));
  }
  // Bounds the socket's blocking calls by what is left until `deadline`
  // (SO_RCVTIMEO / SO_SNDTIMEO, whole milliseconds, rounded up); false if
  // nothing is left. Sets the socket options only when the timeout in force
  // would outlast the deadline or is under half of what is left, so a call
  // of a steady stream sets nothing.
  bool BoundBy(Clock::time_point deadline);
  Status TcpConnect(const tcp::endpoint& ep, Clock::time_point deadline);
  Status ConnectOnce();
  Status ConnectWithRetries();
  Status WriteFrame(int opcode, uint64_t id, std::span<const std::byte> payload,
                    Clock::time_point deadline);
  Status ReadFrame(FrameHeader* h, std::span<const std::byte>* payload, Clock::time_point deadline,
                   std::string_view what);
};

Status RpcClient::Impl::Fail(const Status& s) {
  broken = s;
  held.clear();
  EndTls();
  asio::error_code ignored;
  socket.close(ignored);
  return s;
}

std::string RpcClient::Impl::TlsError(int e) const {
  if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
    return errno != 0 ? ErrnoMessage(errno) : "connection closed";
  return internal::OpenSslErrors();
}

// The TLS handshake on the connected socket, verifying the server's
// certificate against the CA and the host name or address.
Status RpcClient::Impl::TlsHandshake(Clock::time_point deadline) {
  if (!tls) {
    VIRGA_ASSIGN_OR_RETURN(tls, internal::ClientTlsContext(options.tls_ca_pem));
    SSL_CTX_set_options(tls->native_handle(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  }
  EndTls();
  VIRGA_ASSIGN_OR_RETURN(ssl, internal::NewClientSession(*tls, socket.native_handle(), host));
  for (;;) {
    if (!BoundBy(deadline))
      return Status::DeadlineExceeded(fmt::format("{}: TLS handshake timed out", Address()));
    ERR_clear_error();
    errno = 0;
    const int r = SSL_connect(ssl);
    if (r == 1) return Status::OK();
    const int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;  // BoundBy decides
    if (e == SSL_ERROR_SYSCALL && errno == EINTR) continue;
    if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
      return Status::Unauthenticated(fmt::format(
          "{}: TLS: the server's certificate failed verification: {} (is --tls-ca the CA that "
          "signed it, and does it name {}?)",
          Address(), X509_verify_cert_error_string(v), host));
    }
    // The peer went away: a restart, or not a TLS server.
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
      return Status::Unavailable(fmt::format("{}: TLS handshake: {} (does the server use TLS?)",
                                             Address(), TlsError(e)));
    return Status::Unauthenticated(
        fmt::format("{}: TLS handshake failed: {}", Address(), TlsError(e)));
  }
}

// A non-blocking connect bounded by `deadline` (asio's own blocks without limit).
Status RpcClient::Impl::TcpConnect(const tcp::endpoint& ep, Clock::time_point deadline) {
  asio::error_code ec;
  EndTls();
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
  socket.non_blocking(false, ec);  // blocking from here on, bounded by SO_RCVTIMEO / SO_SNDTIMEO
  if (ec) return Status::IOError(fmt::format("{}: blocking mode: {}", Address(), ec.message()));
  sock_timeout = std::chrono::milliseconds(0);
  return Status::OK();
}

bool RpcClient::Impl::BoundBy(Clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  // The timeout in force never outlasts the deadline; one shorter than half
  // of what is left would wake the caller early for nothing.
  if (sock_timeout.count() > 0 && sock_timeout <= left && 2 * sock_timeout >= left) return true;
  timeval tv{static_cast<time_t>(left.count() / 1000),
             static_cast<suseconds_t>(left.count() % 1000 * 1000)};
  const int fd = socket.native_handle();
  sock_timeout = std::chrono::milliseconds(0);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0)
    sock_timeout = left;
  return true;
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
  if (!options.tls_ca_pem.empty()) VIRGA_RETURN_IF_ERROR(TlsHandshake(deadline));

  in.Reset();
  held.clear();  // requests held before the reconnect are dropped like outstanding ones
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
    EndTls();
    asio::error_code ignored;
    socket.close(ignored);
    if (last.code() == Status::Code::kUnauthenticated ||
        last.code() == Status::Code::kInvalidArgument)
      break;  // retrying will not help
  }
  broken = last;
  if (last.code() == Status::Code::kUnauthenticated ||
      last.code() == Status::Code::kInvalidArgument)
    return last;
  return Status::Unavailable(
      fmt::format("{}: unreachable after {} attempt(s): {}", Address(), attempts, last.message()));
}

// Held frames, then header and payload, in one gather write (sendmsg),
// resumed after partial writes. opcode < 0: only the held frames.
Status RpcClient::Impl::WriteFrame(int opcode, uint64_t id, std::span<const std::byte> payload,
                                   Clock::time_point deadline) {
  if (payload.size() > UINT32_MAX)
    return Status::InvalidArgument(fmt::format("payload of {} bytes", payload.size()));
  std::array<iovec, 3> seg{};
  size_t n_seg = 0;
  if (!held.empty()) seg[n_seg++] = {held.data(), held.size()};
  if (opcode >= 0) {
    FrameHeader h;
    h.opcode = static_cast<uint8_t>(opcode);
    h.request_id = id;
    h.payload_len = static_cast<uint32_t>(payload.size());
    EncodeHeader(h, header.data());
    seg[n_seg++] = {header.data(), kHeaderSize};
    if (!payload.empty()) seg[n_seg++] = {const_cast<std::byte*>(payload.data()), payload.size()};
  }
  if (ssl != nullptr) {
    tls_out.clear();
    for (size_t i = 0; i < n_seg; ++i)
      tls_out.append(static_cast<const char*>(seg[i].iov_base), seg[i].iov_len);
    for (size_t off = 0; off < tls_out.size();) {
      if (!BoundBy(deadline))
        return Status::DeadlineExceeded(
            fmt::format("{}: write timed out (server not reading)", Address()));
      ERR_clear_error();
      errno = 0;
      const int n = SSL_write(ssl, tls_out.data() + off,
                              static_cast<int>(std::min<size_t>(tls_out.size() - off, 1 << 30)));
      if (n > 0) {
        off += static_cast<size_t>(n);
        bytes_sent += static_cast<uint64_t>(n);
        continue;
      }
      const int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (e == SSL_ERROR_SYSCALL && errno == EINTR) continue;
      return Status::Unavailable(fmt::format("{}: write failed: {}", Address(), TlsError(e)));
    }
    held.clear();
    return Status::OK();
  }
  size_t first = 0;  // segments before `first` are written
  while (first < n_seg) {
    msghdr msg{};
    msg.msg_iov = seg.data() + first;
    msg.msg_iovlen = n_seg - first;
    if (!BoundBy(deadline))
      return Status::DeadlineExceeded(
          fmt::format("{}: write timed out (server not reading)", Address()));
    const ssize_t n = ::sendmsg(socket.native_handle(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;  // BoundBy decides
      return Status::Unavailable(fmt::format("{}: write failed: {}", Address(), ErrnoMessage(errno)));
    }
    bytes_sent += static_cast<uint64_t>(n);
    auto left = static_cast<size_t>(n);
    while (first < n_seg && left >= seg[first].iov_len) left -= seg[first++].iov_len;
    if (first < n_seg) {
      seg[first].iov_base = static_cast<char*>(seg[first].iov_base) + left;
      seg[first].iov_len -= left;
    }
  }
  held.clear();
  return Status::OK();
}

Status RpcClient::Impl::ReadFrame(FrameHeader* h, std::span<const std::byte>* payload,
                                  Clock::time_point deadline, std::string_view what) {
  const auto spin_until = options.spin.count() > 0 ? Clock::now() + options.spin : Clock::time_point();
  for (;;) {
    bool ready;
    if (Status s = in.Next(h, payload, &ready); !s.ok()) return s.WithContext(Address());
    if (ready) {
      if (!(h->flags & kFlagReply))
        return Status::Corruption(fmt::format("{}: server sent a request frame", Address()));
      return Status::OK();
    }
    const std::span<std::byte> space = in.WritableSpan();
    while (ssl != nullptr) {  // TLS: blocking reads, bounded by the socket timeout
      if (!BoundBy(deadline)) return Status::DeadlineExceeded(fmt::format("{}: {}", Address(), what));
      ERR_clear_error();
      errno = 0;
      const int n = SSL_read(ssl, space.data(), static_cast<int>(std::min<size_t>(space.size(), 1 << 30)));
      if (n > 0) {
        in.Commit(static_cast<size_t>(n));
        bytes_received += static_cast<uint64_t>(n);
        break;
      }
      const int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return Status::Unavailable(fmt::format("{}: server closed the connection", Address()));
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      if (e == SSL_ERROR_SYSCALL && (errno == EINTR || errno == EAGAIN)) continue;
      return Status::Unavailable(fmt::format("{}: read failed: {}", Address(), TlsError(e)));
    }
    for (; ssl == nullptr;) {
      // Busy-poll (non-blocking reads) while spinning, then block.
      const bool spinning = options.spin.count() > 0 && Clock::now() < spin_until;
      if (!spinning && !BoundBy(deadline))
        return Status::DeadlineExceeded(fmt::format("{}: {}", Address(), what));
      const ssize_t n =
          ::recv(socket.native_handle(), space.data(), space.size(), spinning ? MSG_DONTWAIT : 0);
      if (n > 0) {
        in.Commit(static_cast<size_t>(n));
        bytes_received += static_cast<uint64_t>(n);
        break;
      }
      if (n == 0)
        return Status::Unavailable(fmt::format("{}: server closed the connection", Address()));
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return Status::Unavailable(fmt::format("{}: read failed: {}", Address(), ErrnoMessage(errno)));
      // Nothing yet: spinning, or the socket timeout expired (BoundBy decides).
      if (spinning) std::this_thread::yield();  // see ServerOptions::spin: lets a co-located peer run
    }
  }
}

RpcClient::RpcClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
uint64_t RpcClient::bytes_sent() const { return impl_->bytes_sent; }
uint64_t RpcClient::bytes_received() const { return impl_->bytes_received; }
RpcClient::~RpcClient() = default;

Result<std::unique_ptr<RpcClient>> RpcClient::Connect(std::string_view host, uint16_t port,
                                                      const ClientOptions& options) {
  auto impl = std::make_unique<Impl>(host, port, options);
  VIRGA_RETURN_IF_ERROR(impl->ConnectWithRetries());
  return std::unique_ptr<RpcClient>(new RpcClient(std::move(impl)));
}

Result<uint64_t> RpcClient::Send(uint8_t opcode, std::span<const std::byte> payload) {
  Impl& m = *impl_;
  if (!m.broken.ok()) return m.Broken();
  if (opcode == kOpHello) return Status::InvalidArgument("opcode 0 is reserved for HELLO");
  const uint64_t id = m.next_id;
  Status s = m.WriteFrame(opcode, id, payload, Clock::now() + m.options.call_timeout);
  if (!s.ok()) return m.Fail(s);
  ++m.next_id;
  return id;
}

Result<uint64_t> RpcClient::Hold(uint8_t opcode, std::span<const std::byte> payload) {
  Impl& m = *impl_;
  if (!m.broken.ok()) return m.Broken();
  if (opcode == kOpHello) return Status::InvalidArgument("opcode 0 is reserved for HELLO");
  if (payload.size() > UINT32_MAX)
    return Status::InvalidArgument(fmt::format("payload of {} bytes", payload.size()));
  FrameHeader h;
  h.opcode = opcode;
  h.request_id = m.next_id;
  h.payload_len = static_cast<uint32_t>(payload.size());
  EncodeHeader(h, m.header.data());
  m.held.append(reinterpret_cast<const char*>(m.header.data()), kHeaderSize);
  m.held.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return m.next_id++;
}

Status RpcClient::SendHeld() {
  Impl& m = *impl_;
  if (m.held.empty()) return Status::OK();
  if (!m.broken.ok()) return m.Broken();
  Status s = m.WriteFrame(-1, 0, {}, Clock::now() + m.options.call_timeout);
  return s.ok() ? s : m.Fail(s);
}

bool RpcClient::held() const { return !impl_->held.empty(); }

Status RpcClient::Wait(uint64_t request_id, Reply* reply) {
  Impl& m = *impl_;
  if (!m.broken.ok()) return m.Broken();
  if (!m.held.empty()) {
    Status s = m.WriteFrame(-1, 0, {}, Clock::now() + m.options.call_timeout);
    if (!s.ok()) return m.Fail(s);
  }
  if (m.oldest == m.next_id || request_id != m.oldest)
    return Status::InvalidArgument(fmt::format("Wait({}): the oldest outstanding request is {}",
                                               request_id, m.oldest == m.next_id ? 0 : m.oldest));
  Status s = m.ReadFrame(&reply->header, &reply->payload, Clock::now() + m.options.call_timeout,
                         "no reply within the call timeout");
  if (!s.ok()) {
    if (s.code() == Status::Code::kDeadlineExceeded)  // formatted here: no string per call
      s = Status::DeadlineExceeded(fmt::format("{}: no reply to request {} within {} ms",
                                               m.Address(), request_id,
                                               m.options.call_timeout.count()));
    return m.Fail(s);
  }
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
