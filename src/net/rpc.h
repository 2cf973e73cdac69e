// Framed, authenticated, pipelined request/response transport over TCP
// (wire format: docs/wire-format.md, framing: net/frame.h).
//
// RpcServer (Asio): N I/O threads, one io_context each; accepted connections
// are dealt round-robin and each is served on one thread, in order: read
// frames, call the Handler, write the replies (the handler runs on the I/O
// thread: handlers must be short and must never block on I/O). Requests that
// arrive together are answered together with one gather write.
// The first frame of a connection must be HELLO carrying the shared token;
// anything else, a wrong token, a bad header, an oversized frame, a peer that
// stays silent past auth_timeout, or a malformed payload (the handler returns
// kCloseConnection) closes that connection only, with a logged reason; the
// server goes on serving.
//
// Either side may run over TLS (ServerOptions::tls_cert_file,
// ClientOptions::tls_ca_pem): the same frames inside a TLS session.
//
// RpcClient: one blocking TCP connection (Asio, synchronous), TCP_NODELAY,
// many requests in flight (Send returns a request id, Wait collects the reply,
// replies come back in request order), per-call timeouts, reconnect with
// backoff. Not thread-safe: one per thread (or guard it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "net/frame.h"
#include "virga/status.h"

namespace virga::net {

struct ServerOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;                 // 0 = pick a free port (see RpcServer::port)
  int threads = 1;                   // I/O threads (>= 1), one io_context each
  std::string token;                 // required; empty is refused at Start
  uint32_t max_payload = 64u << 20;  // larger frames close the connection
  // After handling I/O a thread busy-polls for this long before it sleeps in
  // epoll: an idle vCPU halts and waking it costs ~65 us, far more than a
  // round trip. Costs up to one core per thread while clients are active.
  // The spin yields between polls and stops as soon as a yield hands the CPU
  // to another thread (see spin_yield_limit): it spins only on a CPU nothing
  // else wants. 0 = off. Hits are counted in ServerCounters::spin_hits.
  std::chrono::microseconds spin{50};
  // A yield that returns later than this ran another thread on this CPU (a
  // client pinned beside the server, other work); the spin then stops and
  // the thread blocks, instead of taking turns with that thread. A bare
  // yield takes ~1 us. 0 = keep spinning regardless.
  std::chrono::microseconds spin_yield_limit{10};
  // A connection that has not completed HELLO (with the right token) this
  // long after it was accepted is closed: idle or trickling peers cannot hold
  // connections open without the token.
  std::chrono::milliseconds auth_timeout{5000};
  // Connections one peer address may hold open at once (authenticated or not); more are
  // closed at accept, so one host cannot use up the server's descriptors. Every local
  // function opens 3 or 4. 0 = no cap.
  uint32_t max_connections_per_peer = 1024;
  // Replies queued behind a write in progress; past this the connection stops
  // reading until the peer drains its replies (back-pressure).
  size_t max_queued_reply_bytes = 8u << 20;
  // TLS (OpenSSL through Asio): PEM files of the certificate (chain) and its
  // private key. Both empty: plain TCP. Every connection then starts with a
  // TLS handshake (TLS 1.2 or later), bounded by auth_timeout with HELLO.
  std::string tls_cert_file, tls_key_file;
};

// What a handler does with a request. Reply payload goes to *reply (a reused
// buffer, empty on entry). A non-OK *reply_status is sent as the reply's
// status code with its message as the payload (*reply is then ignored).
// kCloseConnection answers nothing: the replies to earlier requests are
// flushed, then the connection closes, logging *reply_status as the reason.
enum class HandlerAction { kReply, kCloseConnection };

struct RequestContext {
  uint64_t connection_id = 0;
  std::string_view peer;  // "127.0.0.1:53321"
};

// Called on an I/O thread; calls for one connection never overlap, calls for
// connections on different threads do. `payload` is 8-byte aligned and valid
// only during the call.
using Handler = std::function<HandlerAction(const RequestContext& ctx, const FrameHeader& request,
                                            std::span<const std::byte> payload,
                                            Status* reply_status, std::string* reply)>;

struct ServerCounters {
  uint64_t connections_accepted = 0, connections_open = 0;
  uint64_t connections_rejected = 0;  // closed for a protocol or auth fault
  uint64_t frames = 0, bytes_in = 0, bytes_out = 0;
  uint64_t spin_hits = 0;  // requests found while spinning (CPU burnt to save wake-ups)
};

class RpcServer {
 public:
  RpcServer(ServerOptions options, Handler handler);
  ~RpcServer();  // Stop()
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  Status Start();         // binds and starts the I/O threads; once
  void Stop();            // closes every connection, joins threads; idempotent; not from a handler
  uint16_t port() const;  // the bound port (after Start)
  ServerCounters counters() const;  // thread-safe; a consistent-enough snapshot

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ClientOptions {
  std::string token;
  uint32_t max_payload = 64u << 20;                 // larger replies break the connection
  std::chrono::milliseconds connect_timeout{2000};  // per attempt, including HELLO
  std::chrono::milliseconds call_timeout{10000};    // per Wait (and per Send's write)
  int connect_attempts = 5;                         // backoff 50 ms doubling between them
  // Busy-poll for a reply this long before sleeping in poll(2); as for the
  // server, trades a core for the ~65 us wake-up of a halted vCPU. 0 = off.
  std::chrono::microseconds spin{0};
  // TLS: PEM text of the CA certificate(s) the server's certificate must
  // chain to; empty: plain TCP. The certificate must also name the host
  // connected to (a DNS name, or an IP address in its subjectAltName). A
  // failed handshake or verification is Unauthenticated naming the address
  // and the reason, and is not retried. `spin` does not apply over TLS.
  std::string tls_ca_pem;
};

struct Reply {
  FrameHeader header;
  Status status;                       // the server's outcome (code + message payload on error)
  std::span<const std::byte> payload;  // 8-byte aligned; valid until the next Wait/Call
};

class RpcClient {
 public:
  // Connects and authenticates. Unavailable (unreachable after all attempts)
  // and Unauthenticated (token refused) name the address.
  static Result<std::unique_ptr<RpcClient>> Connect(std::string_view host, uint16_t port,
                                                    const ClientOptions& options);
  ~RpcClient();

  // Writes a request (header + payload, one gather write) and returns its id.
  // The payload may be reused as soon as Send returns.
  Result<uint64_t> Send(uint8_t opcode, std::span<const std::byte> payload);
  // Like Send, but the request is only copied into the connection's output:
  // it is written with the next Send (in the same gather write) or before the
  // next Wait, so two requests cost one system call and one wake-up of the
  // server instead of two.
  Result<uint64_t> Hold(uint8_t opcode, std::span<const std::byte> payload);
  // Writes the held requests now (nothing if none).
  Status SendHeld();
  bool held() const;  // requests are held
  // Waits for the reply to `request_id`, which must be the oldest outstanding.
  // Returns the transport error if any (DeadlineExceeded after call_timeout,
  // Unavailable if the server closed), else reply->status.
  // A transport error breaks the connection: outstanding requests are lost
  // and every later call fails until Reconnect().
  Status Wait(uint64_t request_id, Reply* reply);
  // Send + Wait.
  Status Call(uint8_t opcode, std::span<const std::byte> payload, Reply* reply);
  // Closes and reconnects (with backoff); outstanding requests are dropped.
  Status Reconnect();
  std::string address() const;   // "host:port"
  uint64_t outstanding() const;  // requests sent and not yet waited for
  // Bytes written to and read from the server so far (headers included), over
  // every connection this client made.
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;

 private:
  struct Impl;
  explicit RpcClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace virga::net
