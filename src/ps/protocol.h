// Parameter-server opcodes and payload encodings (wire protocol v1; the
// framing is src/net/frame.h, the full table is docs/wire-format.md).
// Both PsService (server) and PsClient encode through these helpers, so the
// two sides cannot drift apart.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "net/frame.h"
#include "ps/table.h"

namespace virga::ps {

enum class Op : uint8_t {
  // 0 is HELLO (net layer).
  kPing = 1,          // -> u32 json length-prefixed string: server stats
  kCreateTable = 2,   // TableConfig -> (empty); AlreadyExists if the name is taken
  kDropTable = 3,     // str name -> (empty)
  kListTables = 4,    // -> str json
  kPull = 5,          // str table, u64[] keys -> u64 version, f32[] rows (keys*width)
  kPush = 6,          // str table, u64[] keys, f32[] grads -> u64 version
  kDumpTable = 7,     // str name -> str serialized table
  kLoadTable = 8,     // str serialized table -> (empty); replaces a table of that name
  kKvPut = 10,        // str key, str value -> u64 version
  kKvGet = 11,        // str key -> u64 version, str value
  kKvMultiGet = 12,   // u32 n, n x str key -> n x (u8 present, str value)
  kKvDelete = 13,     // str key -> u8 existed
  kKvCas = 14,        // str key, u64 expected, str value -> u8 swapped, u64 current
  kKvAddFloats = 15,  // str key, f32[] delta -> f32[] result
  kQueueEnqueue = 20, // str queue, u32 n, n x str payload -> u64[] ids
  kQueueLease = 21,   // str queue, str worker, u32 timeout_ms -> u8 got, u64 lease, u64 item, u32 attempt, str payload
  kQueueAck = 22,     // str queue, u64 lease -> (empty)
  kQueueRelease = 23, // str queue, u64 lease -> (empty)
  kQueueStats = 24,   // str queue -> u64 pending, leased, acked, expired, enqueued
  kQueueDrop = 25,    // str queue -> (empty)
  kQueueRenew = 26,   // str queue, u64 lease, u32 timeout_ms -> (empty)
  kCheckpoint = 30,   // -> str checkpoint id (FailedPrecondition-like error if none configured)
  // Local training (docs/training.md, "Local steps"): a worker's replica of
  // the rows it trains on, and the change it made to them. Keys are packed
  // (PackedKeys below); rows carry OptimizerReplicaFloats(kind) per coordinate.
  kPullState = 40,    // str table, packed keys -> u64 version, f32[] replica rows
  kPushDelta = 41,    // str table, u32 steps, packed keys, f32[] deltas -> u64 version
};

// Caps applied when decoding requests.
inline constexpr uint32_t kMaxNameBytes = 1024;
inline constexpr uint32_t kMaxKeysPerRequest = 1u << 22;
inline constexpr uint32_t kMaxValueBytes = 64u << 20;
inline constexpr uint32_t kMaxBatch = 1u << 20;

// Packed keys: u32 count, u32 byte length, then each key as the zigzag
// LEB128 varint of its difference from the previous key (the first from 0).
// Hashed feature ids below 2^24 in a worker's order take about 3 bytes
// instead of 8. Decoding checks the count, the byte length and that every
// varint ends inside it and within 10 bytes.
void EncodePackedKeys(std::span<const uint64_t> keys, net::PayloadWriter* w);
// Replaces *keys (storage reused) with the decoded keys; at most max_count.
Status DecodePackedKeys(net::PayloadReader* r, std::vector<uint64_t>* keys, uint32_t max_count);

void EncodeTableConfig(const TableConfig& c, net::PayloadWriter* w);
Status DecodeTableConfig(net::PayloadReader* r, TableConfig* c);

}  // namespace virga::ps
