// Internal to virga_net: one server-side connection and the I/O thread that
// owns it. Not part of the API (see net/rpc.h).
#pragma once

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/frame.h"
#include "net/rpc.h"

namespace virga::net::internal {

class Connection;

// Counters of one I/O thread, summed by RpcServer::counters(). Written by
// that thread (connections_accepted/open also by the accepting thread).
struct alignas(64) ThreadCounters {
  std::atomic<uint64_t> accepted{0}, open{0}, rejected{0};
  std::atomic<uint64_t> frames{0}, bytes_in{0}, bytes_out{0}, spin_hits{0};
  void Add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
};

// One I/O thread: an io_context run by one std::thread, and the connections
// dealt to it. conns and spinning are touched only on that thread (and by
// Stop once the thread has been told to close them).
struct Worker {
  asio::io_context ioc{1};  // concurrency hint 1: one thread runs it
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns;
  bool spinning = false;  // true while the thread busy-polls with nothing ready
  ThreadCounters counters;
};

// Open connections per peer address (ServerOptions::max_connections_per_peer).
// Thread-safe.
class PeerCounts {
 public:
  // A slot for `address`, given back when the last copy of the token is
  // destroyed; null when the address already holds `cap` (0: no cap).
  // REQUIRES: *this outlives the tokens.
  std::shared_ptr<void> Take(const std::string& address, uint32_t cap) {
    {
      std::lock_guard<std::mutex> l(mu_);
      uint32_t& n = open_[address];
      if (cap > 0 && n >= cap) return nullptr;
      ++n;
    }
    return std::shared_ptr<void>(static_cast<void*>(this), [this, address](void*) {
      std::lock_guard<std::mutex> l(mu_);
      if (auto it = open_.find(address); it != open_.end() && --it->second == 0) open_.erase(it);
    });
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, uint32_t> open_;  // GUARDED_BY(mu_)
};

// Settings shared by every connection of a server; immutable after Start
// (but for the peer counts).
struct ServerShared {
  ServerOptions options;
  Handler handler;
  std::unique_ptr<asio::ssl::context> tls;  // null: plain TCP
  mutable PeerCounts peers;
};

// The per-connection state machine. All methods run on the worker's thread.
// At most one read and one write are in flight; frames are handled in
// arrival order and their replies queued in `pending_` while `active_` is
// being written, so reading, handling and writing overlap.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const ServerShared& shared, Worker* worker, asio::ip::tcp::socket socket, uint64_t id,
             std::string peer);

  void Start();  // arms the auth timer and starts reading
  // Idempotent. `fault` marks a protocol/auth fault: logged at warn and
  // counted as rejected; otherwise logged at info.
  void Close(const std::string& reason, bool fault);

  // Held for the connection's life: its place in the per-peer count.
  void set_peer_slot(std::shared_ptr<void> slot) { peer_slot_ = std::move(slot); }

 private:
  // Reply frames of one gather write; slots are reused (strings keep their capacity).
  struct Batch {
    std::vector<std::array<std::byte, kHeaderSize>> headers;
    std::vector<std::string> payloads;
    std::vector<asio::const_buffer> bufs;
    size_t n = 0;         // replies in use
    size_t bytes = 0;     // their total size on the wire
    std::string* Slot();  // the next free payload slot, cleared
    void Clear() {
      n = 0;
      bytes = 0;
    }
  };

  void StartHandshake();  // TLS: then StartRead
  void StartRead();
  void OnRead(const asio::error_code& ec, size_t n);
  void Process();  // handles buffered frames, then starts a write and/or a read
  // False when processing must stop (the connection closes).
  bool HandleFrame(const FrameHeader& h, std::span<const std::byte> payload);
  bool HandleHello(const FrameHeader& h, std::span<const std::byte> payload);
  void QueueReply(const FrameHeader& request, const Status& status);  // payload in Slot()
  void CloseAfterWrite(std::string reason, bool fault);
  void StartWrite();
  void OnWrite(const asio::error_code& ec, size_t n);

  const ServerShared& shared_;
  Worker* const worker_;
  asio::ip::tcp::socket socket_;
  // TLS over socket_ (null: plain TCP). At most one read and one write in
  // flight, on this connection's thread, as asio::ssl::stream allows.
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  std::string flat_;  // TLS: the batch's frames in one buffer (one record, not one per buffer)
  asio::steady_timer auth_timer_;
  const uint64_t id_;
  const std::string peer_;
  std::shared_ptr<void> peer_slot_;  // PeerCounts::Take's token, held for life
  FrameAssembler in_;
  Batch active_, pending_;  // being written; queued behind it
  bool authenticated_ = false;
  bool reading_ = false, writing_ = false, closed_ = false;
  bool close_after_write_ = false;  // stop handling; close once replies are flushed
  bool close_fault_ = false;
  std::string close_reason_;
};

}  // namespace virga::net::internal
