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
  Status StartPull(std::string_view table, std::span<const uint64_t> keys, std::span<float> out);
  Status FinishPull(uint64_t* version = nullptr);
  Status StartPush(std::string_view table, std::span<const uint64_t> keys,
                   std::span<const float> grads);
  // Waits for every outstanding reply; returns the first error among them.
  Status Flush();
  // The whole table, merged from every server, as (key, row) pairs.
  Status DumpTable(std::string_view table,
                   std::vector<std::pair<uint64_t, std::vector<float>>>* rows);

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
  Result<QueueCounts> QueueStats(std::string_view queue);
  // Asks every server to checkpoint now; returns the ids.
  Result<std::vector<std::string>> Checkpoint();

 private:
  struct Impl;
  explicit PsClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits "h1:p1,h2:p2" into a list; InvalidArgument naming a bad entry.
Result<std::vector<std::string>> ParseServerList(std::string_view list);

}  // namespace virga
