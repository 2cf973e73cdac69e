// PsClient: the typed client of one or more parameter servers.
//
// Keys are spread over the servers by a deterministic partition (a mixed
// hash of the key modulo the number of servers; KV keys and queue names by
// XXH3 of the name), so any client with the same server list agrees on where
// each key lives. Tables are created on every server. Calls return Status;
// a dead server shows up as Unavailable / DeadlineExceeded naming it.
//
// Pipelining: StartPull / StartPush send at once and return; their replies are
// collected by FinishPull / Flush (replies arrive in request order), so the
// next minibatch's pull can travel while the current gradient is computed.
// A transport fault (server restarted, connection reset, timeout) fails the
// call that saw it; the next call to that server reconnects with backoff.
//
// Size: a pull or push of any number of keys (millions, e.g. evaluating a
// whole model) is cut into requests of at most kMaxRequestBytes each, sent
// pipelined with at most kMaxInFlightBytes of requests and replies
// outstanding per server; the caller sees one call. The rows of a pull that
// spans several requests are not one snapshot: pushes of other clients may
// land between its chunks (as they may between servers).
// Not thread-safe: use one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"
#include "virga/table_config.h"

namespace virga {

struct PsClientOptions {
  std::vector<std::string> servers;                 // "host:port", at least one
  std::string token;                                // the servers' shared secret
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds call_timeout{10000};
  int connect_attempts = 5;                         // backoff 50 ms doubling
  std::chrono::microseconds spin{0};                // busy-poll for replies (see net/rpc.h)
  // TLS: PEM text of the CA the servers' certificates chain to; "" = plain TCP.
  // Certificates must name the host (DNS name, or IP address in subjectAltName).
  std::string tls_ca_pem;
};

struct QueueLease {
  uint64_t lease_id = 0;
  uint64_t item_id = 0;
  uint32_t attempt = 0;
  std::string payload;
};

struct QueueCounts {
  uint64_t pending = 0, leased = 0, acked = 0, expired = 0, enqueued = 0;
};

class PsClient {
 public:
  // Largest request or reply frame a pull/push sends or expects (payload
  // bytes); bigger calls are split. Well under the servers' default
  // max_payload (64 MiB), so a chunk is never refused for size.
  static constexpr size_t kMaxRequestBytes = 2u << 20;
  // Request + reply bytes a client keeps outstanding on one connection
  // before it reads replies: below the server's max_queued_reply_bytes
  // (8 MiB), so a server never stops reading a client that is blocked
  // writing to it.
  static constexpr size_t kMaxInFlightBytes = 6u << 20;

  static Result<std::unique_ptr<PsClient>> Connect(const PsClientOptions& options);
  ~PsClient();
  size_t num_servers() const;

  // Tables (on every server).
  Status CreateTable(const TableConfig& config);
  Status DropTable(std::string_view name);
  // Server `i`'s stats as JSON (tables, request counters).
  Result<std::string> ServerStats(size_t i);

  // out.size() == keys.size() * width. *version (optional) gets the smallest
  // table version seen across servers.
  Status Pull(std::string_view table, std::span<const uint64_t> keys, std::span<float> out,
              uint64_t* version = nullptr);
  Status Push(std::string_view table, std::span<const uint64_t> keys,
              std::span<const float> grads);
  // Pipelined forms. `keys` may be reused at once; `out` must stay valid until
  // FinishPull. At most one pull in flight.
  // With `with_next` the pull is held and written together with the next
  // request to the same server (a StartPush, in one system call) or before
  // any reply is awaited: one wake-up of the server for both, which is what
  // a worker sharing a CPU with its server wants (see docs/training.md).
  Status StartPull(std::string_view table, std::span<const uint64_t> keys, std::span<float> out,
                   bool with_next = false);
  Status FinishPull(uint64_t* version = nullptr);
  // With `with_next` the push is held like such a pull: written with the
  // next request to the same server, or by the next FinishPull or Flush.
  Status StartPush(std::string_view table, std::span<const uint64_t> keys,
                   std::span<const float> grads, bool with_next = false);
  // Local training (src/ps/replica.h, docs/training.md "Local steps"): the
  // replica rows (optimizer state included) of keys, collected by FinishPull
  // like a pull; and the change a worker made to them, counted as `steps`
  // pushes, whose replies Flush collects like a push's. Keys travel packed
  // (docs/wire-format.md).
  Status StartPullState(std::string_view table, std::span<const uint64_t> keys,
                        std::span<float> out, bool with_next = false);
  Status StartPushDelta(std::string_view table, std::span<const uint64_t> keys,
                        std::span<const float> deltas, uint32_t steps, bool with_next = false);
  // Waits for every outstanding reply; returns the first error among them.
  Status Flush();
  // The whole table, merged from every server, as (key, weights) pairs sorted
  // by key (optimizer state is not included). Dense tables: every key
  // [0, dense_rows) once, from the server that owns it.
  Status DumpTable(std::string_view table,
                   std::vector<std::pair<uint64_t, std::vector<float>>>* rows);
  // The inverse of DumpTable: replaces table `config.name` on every server
  // (created if absent) by one holding `rows`, each server its own keys.
  // Optimizer state starts fresh (as for a new row) and the table version
  // at 0; keys not in `rows` read as their initial value. Every row must have
  // config.width floats; dense keys must be < config.dense_rows.
  // ResourceExhausted if one server's share exceeds kMaxLoadBytes (the
  // table is loaded whole, in one request per server). A failure on one
  // server leaves the others loaded.
  static constexpr size_t kMaxLoadBytes = 60u << 20;
  Status LoadTable(const TableConfig& config,
                   std::span<const std::pair<uint64_t, std::vector<float>>> rows);

  // Key-value store.
  Result<uint64_t> Put(std::string_view key, std::string_view value);
  // NotFound if absent.
  Status Get(std::string_view key, std::string* value, uint64_t* version = nullptr);
  // One entry per key, nullopt for absent keys (keys may live on different servers).
  Result<std::vector<std::optional<std::string>>> MultiGet(std::span<const std::string> keys);
  Result<bool> Delete(std::string_view key);
  // Swaps if the current version is `expected` (0: must be absent).
  Result<bool> CompareAndSwap(std::string_view key, uint64_t expected, std::string_view value,
                              uint64_t* current = nullptr);
  Status AddFloats(std::string_view key, std::span<const float> delta,
                   std::vector<float>* result = nullptr);

  // Work queues.
  Result<std::vector<uint64_t>> Enqueue(std::string_view queue,
                                        std::span<const std::string> payloads);
  Result<std::optional<QueueLease>> Lease(std::string_view queue, std::string_view worker,
                                          std::chrono::milliseconds timeout);
  Status Ack(std::string_view queue, uint64_t lease_id);
  Status Release(std::string_view queue, uint64_t lease_id);
  // Extends a live lease to now + timeout (a worker still busy with its item).
  // NotFound if the lease expired, was acked or released; InvalidArgument if
  // timeout <= 0.
  Status Renew(std::string_view queue, uint64_t lease_id, std::chrono::milliseconds timeout);
  // Removes the queue and its items; outstanding leases become unknown. OK
  // if the queue does not exist.
  Status DropQueue(std::string_view queue);
  Result<QueueCounts> QueueStats(std::string_view queue);
  // Asks every server to checkpoint now; returns the ids.
  Result<std::vector<std::string>> Checkpoint();

  // Bytes this client has written to and read from its servers so far
  // (frames and headers; reconnections included).
  uint64_t bytes_sent() const;
  uint64_t bytes_received() const;

 private:
  struct Impl;
  explicit PsClient(std::unique_ptr<Impl> impl);
  Status StartPullOp(uint8_t op, std::string_view table, std::span<const uint64_t> keys,
                     std::span<float> out, bool with_next);
  Status StartPushOp(uint8_t op, std::string_view table, std::span<const uint64_t> keys,
                     std::span<const float> grads, uint32_t steps, bool with_next);
  std::unique_ptr<Impl> impl_;
};

// Splits "h1:p1,h2:p2" into a list; InvalidArgument naming a bad entry.
Result<std::vector<std::string>> ParseServerList(std::string_view list);

}  // namespace virga
