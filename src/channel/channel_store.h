// ChannelStore: the storage a channel job's functions talk through.
//
// The few operations the rounds need (docs/channel.md): whole-object put and
// get of binary values, existence probes for polling, deletes. Two backends:
//   store   the job's ObjectStore (file://, mem://): objects under a key
//           prefix; Put is atomic there (a reader sees all or nothing)
//   redis   a redis-server (redis://host:port) over hiredis: SET / GET /
//           EXISTS / DEL / SCAN, every call with a timeout; a broken
//           connection is reopened on the next call
// Keys are '/'-separated ASCII paths; every error names its key.
//
// Counts of requests made (for the cost estimate and the docs' numbers) are
// kept per instance. Thread safety: one instance per thread (the redis
// connection is not shared); the object-store backend is thread-safe but
// the counters are plain.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "virga/object_store.h"
#include "virga/status.h"

namespace virga::channel {

struct ChannelCounters {
  uint64_t puts = 0, gets = 0, probes = 0, deletes = 0;
  uint64_t bytes_written = 0, bytes_read = 0;
};

class ChannelStore {
 public:
  virtual ~ChannelStore() = default;

  // Writes `data` under `key`, replacing any value, atomically.
  virtual Status Put(std::string_view key, std::string_view data) = 0;
  // Reads the value into *out (capacity reused). NotFound naming the key if absent.
  virtual Status Get(std::string_view key, std::string* out) = 0;
  virtual Result<bool> Exists(std::string_view key) = 0;
  // Absent keys are OK.
  virtual Status Delete(std::string_view key) = 0;
  // Deletes every key starting with `prefix` (job cleanup; not on the hot path).
  virtual Status DeletePrefix(std::string_view prefix) = 0;
  // "store file:///..." or "redis 127.0.0.1:6379" (for messages).
  virtual std::string Describe() const = 0;

  const ChannelCounters& counters() const { return counters_; }

 protected:
  ChannelCounters counters_;
};

// The object-store channel over an open store.
std::unique_ptr<ChannelStore> MakeObjectChannel(std::shared_ptr<ObjectStore> store);

// Parses "redis://host:port" (host an IPv4 address or name, port 1..65535);
// InvalidArgument naming the URI otherwise.
Status ParseRedisUri(std::string_view uri, std::string* host, int* port);
// Connects to a redis-server; `timeout` bounds the connect and every command.
// Unavailable naming the address when it cannot connect or PING fails.
Result<std::unique_ptr<ChannelStore>> ConnectRedisChannel(std::string_view uri,
                                                          std::chrono::milliseconds timeout);

// Opens the channel of a mode: "store" (opens `store_uri`) or "redis" (`redis_uri`).
Result<std::unique_ptr<ChannelStore>> OpenChannel(std::string_view mode, std::string_view store_uri,
                                                  std::string_view redis_uri);

}  // namespace virga::channel
