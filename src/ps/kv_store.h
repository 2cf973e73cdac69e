// The server's key-value store: opaque values under string keys, for
// messages, intermediate data and control-plane state.
//
// Thread safety: every method may be called concurrently. Keys are spread
// over 16 stripes by hash, each behind its own shared_mutex; a call locks only
// the stripe of its key (List, size-wide calls and Serialize/Restore lock all
// stripes). Values are copied in and out, never referenced across calls.
// Copies of a KvStore share one store (the handle is a shared pointer).
//
// Accounting: an entry costs key.size() + value.size() bytes against
// KvLimits::max_total_bytes; map overhead is not counted.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga::ps {

struct KvLimits {
  // Every cap below is enforced with ResourceExhausted naming the key. An
  // empty key is InvalidArgument.
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 64 << 20;
  uint64_t max_total_bytes = 8ull << 30;  // sum over entries of key + value bytes
};

class KvStore {
 public:
  explicit KvStore(KvLimits limits = {});

  // Every value carries a version (1 on first put, +1 per change) for CAS.
  // A deleted then re-created key starts again at 1, so a CAS that spans a
  // delete can succeed against the new value (ABA); callers that care keep a
  // generation inside the value. *version (optional) gets the new version.
  Status Put(std::string_view key, std::string_view value, uint64_t* version = nullptr);
  // NotFound naming the key if absent.
  Status Get(std::string_view key, std::string* value, uint64_t* version = nullptr) const;
  // One entry per key, in order: nullopt for absent keys. Each key is read
  // atomically, the batch is not a snapshot across stripes.
  std::vector<std::optional<std::string>> MultiGet(std::span<const std::string> keys) const;
  // Removes; returns whether it existed.
  bool Delete(std::string_view key);
  // Writes `value` only if the key's current version equals `expected_version`
  // (0 = "must be absent"). Returns true on success, false on a version
  // mismatch; *current (optional) gets the version after the call either way
  // (0 = absent). Limit violations are errors, not false.
  Result<bool> CompareAndSwap(std::string_view key, uint64_t expected_version,
                              std::string_view value, uint64_t* current = nullptr);
  // Treats the value as a little-endian float32 array and adds `delta`
  // element-wise, atomically (absent key = zeros of delta's size), bumping the
  // version. Sizes must match: InvalidArgument naming the key, the stored byte
  // size and delta's float count otherwise. *result (optional) receives the
  // new vector.
  Status AddFloats(std::string_view key, std::span<const float> delta,
                   std::vector<float>* result = nullptr);
  // Keys starting with prefix, sorted bytewise.
  std::vector<std::string> List(std::string_view prefix) const;
  uint64_t total_bytes() const;
  size_t size() const;

  // Checkpoint form (replaces *out), a consistent snapshot of all stripes
  // (writers wait while it is copied; no I/O happens under the locks):
  //   u32 magic "VKVS" | u32 format 1 | u64 count |
  //   count x (u32 key_len | key | u64 version | u64 value_len | value) |
  //   u64 XXH3_64bits of every preceding byte
  // All integers little-endian; entries sorted by key (deterministic bytes).
  void Serialize(std::string* out) const;
  // Replaces the whole content with a Serialize()d blob. Any damage
  // (truncation, bad checksum, malformed fields, duplicate keys) is a
  // Corruption naming `source`; a blob over this store's limits is
  // ResourceExhausted. On error the store is unchanged.
  Status Restore(std::string_view bytes, std::string_view source);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace virga::ps
