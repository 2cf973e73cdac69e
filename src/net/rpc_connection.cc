#include "net/rpc_connection.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <exception>

namespace virga::net::internal {

namespace {

// Compares in time that depends only on the expected token's length, so a
// peer cannot learn a prefix of the token by timing refusals.
bool TokenEquals(std::string_view got, std::string_view want) {
  unsigned diff = got.size() != want.size();
  for (size_t i = 0; i < want.size(); ++i)
    diff |= static_cast<unsigned char>(want[i]) ^
            static_cast<unsigned char>(i < got.size() ? got[i] : 0);
  return diff == 0;
}

}  // namespace

std::string* Connection::Batch::Slot() {
  if (n == payloads.size()) {
    payloads.emplace_back();
    headers.emplace_back();
  }
  payloads[n].clear();
  return &payloads[n];
}

Connection::Connection(const ServerShared& shared, Worker* worker, asio::ip::tcp::socket socket,
                       uint64_t id, std::string peer)
    : shared_(shared),
      worker_(worker),
      socket_(std::move(socket)),
      auth_timer_(worker->ioc),
      id_(id),
      peer_(std::move(peer)),
      in_(shared.options.max_payload) {
  if (shared.tls) tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *shared.tls);
}

void Connection::Start() {
  auth_timer_.expires_after(shared_.options.auth_timeout);
  auth_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (!ec && !self->authenticated_) self->Close("no HELLO within the auth timeout", true);
  });
  if (tls_) return StartHandshake();
  StartRead();
}

void Connection::StartHandshake() {
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this()](const asio::error_code& ec) {
                          if (self->closed_) return;
                          if (ec) return self->Close("TLS handshake failed: " + ec.message(), true);
                          self->StartRead();
                        });
}

void Connection::Close(const std::string& reason, bool fault) {
  if (closed_) return;
  closed_ = true;
  if (fault) {
    spdlog::warn("net: closing connection {} from {}: {}", id_, peer_, reason);
    worker_->counters.Add(worker_->counters.rejected);
  } else {
    spdlog::info("net: closing connection {} from {}: {}", id_, peer_, reason);
  }
  asio::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  auth_timer_.cancel();
  worker_->counters.open.fetch_sub(1, std::memory_order_relaxed);
  worker_->conns.erase(id_);  // callers hold a reference: `this` outlives the call
}

void Connection::StartRead() {
  reading_ = true;
  const std::span<std::byte> space = in_.WritableSpan();
  auto done = [self = shared_from_this()](const asio::error_code& ec, size_t n) {
    self->OnRead(ec, n);
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(space.data(), space.size()), std::move(done));
  } else {
    socket_.async_read_some(asio::buffer(space.data(), space.size()), std::move(done));
  }
}

void Connection::OnRead(const asio::error_code& ec, size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    const bool mid_frame = in_.HasPartialFrame();
    Close(mid_frame ? "peer closed in the middle of a frame" : "peer closed", mid_frame);
    return;
  }
  if (ec) return Close("read failed: " + ec.message(), false);
  in_.Commit(n);
  worker_->counters.Add(worker_->counters.bytes_in, n);
  Process();
}

void Connection::Process() {
  bool drained = false;  // every complete buffered frame has been handled
  while (!closed_ && !close_after_write_ &&
         pending_.bytes < shared_.options.max_queued_reply_bytes) {
    FrameHeader h;
    std::span<const std::byte> payload;
    bool ready;
    if (Status s = in_.Next(&h, &payload, &ready); !s.ok())
      return Close("bad frame: " + s.ToString(), true);
    if (!ready) {
      drained = true;
      break;
    }
    worker_->counters.Add(worker_->counters.frames);
    if (worker_->spinning) worker_->counters.Add(worker_->counters.spin_hits);
    if (!HandleFrame(h, payload)) break;
  }
  if (closed_) return;
  if (!writing_) {
    if (pending_.n > 0) {
      StartWrite();
    } else if (close_after_write_) {
      return Close(close_reason_, close_fault_);
    }
  }
  if (drained && !reading_ && !close_after_write_) StartRead();
}

bool Connection::HandleFrame(const FrameHeader& h, std::span<const std::byte> payload) {
  if (h.flags & kFlagReply) {
    Close(fmt::format("sent a reply frame (request id {}) as a request", h.request_id), true);
    return false;
  }
  if (h.status != 0) {
    Close(fmt::format("request {} carries status code {}", h.request_id, h.status), true);
    return false;
  }
  if (h.opcode == kOpHello) return HandleHello(h, payload);
  if (!authenticated_) {
    Close(fmt::format("first frame is opcode {}, not HELLO", h.opcode), true);
    return false;
  }
  Status status;
  std::string* reply = pending_.Slot();
  const RequestContext ctx{id_, peer_};
  HandlerAction action;
  try {
    action = shared_.handler(ctx, h, payload, &status, reply);
  } catch (const std::exception& e) {
    status = Status::Internal(fmt::format("handler threw on opcode {}: {}", h.opcode, e.what()));
    action = HandlerAction::kCloseConnection;
  }
  if (action == HandlerAction::kCloseConnection) {
    CloseAfterWrite("handler closed the connection: " + status.ToString(), true);
    return false;
  }
  QueueReply(h, status);
  return true;
}

bool Connection::HandleHello(const FrameHeader& h, std::span<const std::byte> payload) {
  PayloadReader reader(payload);
  std::string_view token;
  Status s = reader.Str(&token, kMaxTokenLen);
  if (s.ok()) s = reader.ExpectEnd();
  pending_.Slot();  // empty payload
  if (s.ok() && TokenEquals(token, shared_.options.token)) {
    authenticated_ = true;
    auth_timer_.cancel();
    QueueReply(h, Status::OK());
    return true;
  }
  QueueReply(h, Status::Unauthenticated("token refused"));
  CloseAfterWrite(s.ok() ? "HELLO with a wrong token" : "malformed HELLO: " + s.ToString(), true);
  return false;
}

void Connection::QueueReply(const FrameHeader& request, const Status& status) {
  std::string& payload = pending_.payloads[pending_.n];
  if (!status.ok()) payload = status.message();
  FrameHeader h;
  h.opcode = request.opcode;
  h.flags = kFlagReply;
  h.status = static_cast<uint32_t>(status.code());
  h.request_id = request.request_id;
  h.payload_len = static_cast<uint32_t>(payload.size());
  EncodeHeader(h, pending_.headers[pending_.n].data());
  pending_.bytes += kHeaderSize + payload.size();
  ++pending_.n;
}

void Connection::CloseAfterWrite(std::string reason, bool fault) {
  close_after_write_ = true;
  close_reason_ = std::move(reason);
  close_fault_ = fault;
}

void Connection::StartWrite() {
  std::swap(active_, pending_);
  pending_.Clear();
  active_.bufs.clear();
  for (size_t i = 0; i < active_.n; ++i) {
    active_.bufs.emplace_back(active_.headers[i].data(), kHeaderSize);
    if (!active_.payloads[i].empty())
      active_.bufs.emplace_back(active_.payloads[i].data(), active_.payloads[i].size());
  }
  writing_ = true;
  auto done = [self = shared_from_this()](const asio::error_code& ec, size_t n) {
    self->OnWrite(ec, n);
  };
  if (tls_) {  // an SSL stream writes one buffer per record: join them
    flat_.clear();
    for (const asio::const_buffer& b : active_.bufs)
      flat_.append(static_cast<const char*>(b.data()), b.size());
    asio::async_write(*tls_, asio::buffer(flat_), std::move(done));
  } else {
    asio::async_write(socket_, active_.bufs, std::move(done));
  }
}

void Connection::OnWrite(const asio::error_code& ec, size_t n) {
  writing_ = false;
  active_.Clear();
  if (closed_) return;
  if (ec) return Close("write failed: " + ec.message(), false);
  worker_->counters.Add(worker_->counters.bytes_out, n);
  Process();
}

}  // namespace virga::net::internal
