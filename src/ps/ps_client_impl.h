// Internals of PsClient shared by its two source files.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "net/rpc.h"
#include "ps/protocol.h"
#include "virga/ps_client.h"

namespace virga {

using net::PayloadReader;
using net::PayloadWriter;
using ps::Op;

// The key -> server partition (stable: part of the deployment contract).
inline size_t ServerOfKey(uint64_t key, size_t n) {
  if (n == 1) return 0;
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return static_cast<size_t>(key % n);
}

inline size_t ServerOfName(std::string_view name, size_t n) {
  return n == 1 ? 0 : static_cast<size_t>(XXH3_64bits(name.data(), name.size()) % n);
}

// What to do with a reply when it arrives. A pull or push may be cut into
// several requests (chunks); each pull chunk knows which rows it carries.
struct PendingOp {
  enum Kind { kPull, kPush } kind;
  uint64_t request_id;
  size_t first = 0;   // pull: index of the chunk's first key in Conn::pull_pos (several
                      // servers) or in the caller's keys (one server)
  size_t count = 0;   // pull: keys in the chunk
  size_t bytes = 0;   // request + expected reply payload bytes (flow control)
};

struct Conn {
  std::unique_ptr<net::RpcClient> rpc;
  std::deque<PendingOp> pending;
  size_t in_flight_bytes = 0;      // sum of pending[i].bytes
  std::string send_buf;
  // This server's share of the pull in flight (several servers only): its
  // keys and their positions in the caller's array. Kept apart from the push
  // scratch so a StartPush may be issued while a pull is in flight.
  std::vector<uint64_t> pull_keys;
  std::vector<uint32_t> pull_pos;
  std::vector<uint64_t> push_keys;
  std::vector<uint32_t> push_pos;
  std::vector<float> grads;
  bool broken = false;  // a transport fault happened: reconnect before the next request
};

// Faults of the connection itself (as opposed to a server's error reply).
inline bool IsTransportFault(const Status& s) {
  using C = Status::Code;
  return s.code() == C::kUnavailable || s.code() == C::kDeadlineExceeded ||
         s.code() == C::kIOError || s.code() == C::kCorruption;
}

struct PsClient::Impl {
  std::vector<Conn> conns;
  // The pull in flight.
  std::span<float> pull_out;
  size_t pull_width = 0;
  bool pull_active = false;
  uint64_t pull_version = UINT64_MAX;
  Status pull_status;
  Status push_status;  // first error among pipelined pushes, reported by Flush
  uint32_t push_steps = 1;  // the steps a PUSH_DELTA being sent carries

  // Reconnects (with the transport's backoff) after a transport fault, so a
  // restarted or briefly unreachable server costs one failed call, not all.
  Status Ensure(size_t s) {
    Conn& c = conns[s];
    if (!c.broken) return Status::OK();
    c.pending.clear();
    c.in_flight_bytes = 0;
    VIRGA_RETURN_IF_ERROR(c.rpc->Reconnect().WithContext(c.rpc->address()));
    c.broken = false;
    return Status::OK();
  }

  Status Note(size_t s, Status st) {
    if (IsTransportFault(st)) conns[s].broken = true;
    return st;
  }

  Status Call(size_t s, Op op, const std::string& payload, net::Reply* reply) {
    VIRGA_RETURN_IF_ERROR(DrainAll(s));
    VIRGA_RETURN_IF_ERROR(Ensure(s));
    return Note(s, conns[s].rpc->Call(static_cast<uint8_t>(op), net::AsBytes(payload), reply))
        .WithContext(conns[s].rpc->address());
  }

  // Consumes one pending reply of server s.
  Status ConsumeOne(size_t s) {
    Conn& c = conns[s];
    PendingOp op = c.pending.front();
    c.pending.pop_front();
    c.in_flight_bytes -= op.bytes;
    net::Reply reply;
    Status st = Note(s, c.rpc->Wait(op.request_id, &reply));
    if (c.broken) {  // the replies still pending will never come
      const bool lost_pull = op.kind == PendingOp::kPull ||
                             std::any_of(c.pending.begin(), c.pending.end(),
                                         [](const PendingOp& p) { return p.kind == PendingOp::kPull; });
      if (lost_pull && pull_status.ok()) pull_status = st.WithContext(c.rpc->address());
      if (push_status.ok()) push_status = st.WithContext(c.rpc->address());
      c.pending.clear();
      c.in_flight_bytes = 0;
      return Status::OK();
    }
    if (op.kind == PendingOp::kPush) {
      if (!st.ok() && push_status.ok()) push_status = st.WithContext(c.rpc->address());
      return Status::OK();
    }
    if (!st.ok()) {
      if (pull_status.ok()) pull_status = st.WithContext(c.rpc->address());
      return Status::OK();
    }
    PayloadReader in(reply.payload);
    uint64_t version = 0;
    std::span<const float> rows;
    Status ds = in.U64(&version);
    if (ds.ok()) ds = in.Array(&rows, UINT32_MAX);
    const size_t w = pull_width;
    if (ds.ok() && rows.size() != op.count * w)
      ds = Status::Corruption("pull reply of " + std::to_string(rows.size()) + " floats, expected " +
                              std::to_string(op.count * w));
    if (!ds.ok()) {
      if (pull_status.ok()) pull_status = ds.WithContext(c.rpc->address());
      return Status::OK();
    }
    pull_version = std::min(pull_version, version);
    if (conns.size() == 1) {
      std::memcpy(&pull_out[op.first * w], rows.data(), rows.size_bytes());
    } else {
      const uint32_t* pos = c.pull_pos.data() + op.first;
      for (size_t i = 0; i < op.count; ++i)
        std::memcpy(&pull_out[size_t{pos[i]} * w], &rows[i * w], w * sizeof(float));
    }
    return Status::OK();
  }

  Status DrainAll(size_t s) {
    while (!conns[s].pending.empty()) VIRGA_RETURN_IF_ERROR(ConsumeOne(s));
    return Status::OK();
  }

  // Splits keys by server into each Conn's pull or push keys/pos.
  void Split(std::span<const uint64_t> keys, bool pull) {
    for (Conn& c : conns) {
      (pull ? c.pull_keys : c.push_keys).clear();
      (pull ? c.pull_pos : c.push_pos).clear();
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      Conn& c = conns[ServerOfKey(keys[i], conns.size())];
      (pull ? c.pull_keys : c.push_keys).push_back(keys[i]);
      (pull ? c.pull_pos : c.push_pos).push_back(static_cast<uint32_t>(i));
    }
  }

  // Keys per request so that neither the request nor its reply exceeds
  // kMaxRequestBytes (2 KiB left for the table name and the framing).
  static bool IsPush(Op op) { return op == Op::kPush || op == Op::kPushDelta; }
  static bool Packed(Op op) { return op == Op::kPullState || op == Op::kPushDelta; }
  static size_t ChunkKeys(Op op, size_t width) {
    const size_t key_bytes = Packed(op) ? 10 : sizeof(uint64_t);  // a packed key's worst case
    const size_t per_key = IsPush(op) ? key_bytes + width * sizeof(float)
                                      : std::max(key_bytes, width * sizeof(float));
    return std::clamp<size_t>((PsClient::kMaxRequestBytes - 2048) / per_key, 1,
                              ps::kMaxKeysPerRequest);
  }

  // Sends keys (and for a push, grads: keys.size() * width floats) to server
  // s as one or more pipelined requests. `first` is the index of keys[0] in
  // the positions the pull replies are scattered by (see PendingOp::first).
  // Reads replies first whenever the connection would have more than
  // kMaxInFlightBytes outstanding. `hold`: RpcClient::Hold instead of Send.
  Status SendKeys(size_t s, Op op, std::string_view table, std::span<const uint64_t> keys,
                  std::span<const float> grads, size_t width, size_t first, bool hold = false) {
    VIRGA_RETURN_IF_ERROR(Ensure(s));
    Conn& c = conns[s];
    const size_t chunk = ChunkKeys(op, width);
    for (size_t at = 0; at < keys.size(); at += chunk) {
      const size_t n = std::min(chunk, keys.size() - at);
      const size_t bytes = n * (sizeof(uint64_t) + width * sizeof(float)) + table.size() + 64;
      while (!c.pending.empty() && c.in_flight_bytes + bytes > PsClient::kMaxInFlightBytes) {
        VIRGA_RETURN_IF_ERROR(ConsumeOne(s));
        if (c.broken)
          return Status::Unavailable(c.rpc->address() + ": connection lost in a pipelined " +
                                     (IsPush(op) ? "push" : "pull"));
      }
      PayloadWriter w(&c.send_buf);
      w.Str(table);
      if (op == Op::kPushDelta) w.U32(push_steps);
      if (Packed(op)) {
        ps::EncodePackedKeys(keys.subspan(at, n), &w);
      } else {
        w.Array(keys.subspan(at, n));
      }
      if (IsPush(op)) w.Array(grads.subspan(at * width, n * width));
      auto id = hold ? c.rpc->Hold(static_cast<uint8_t>(op), net::AsBytes(c.send_buf))
                     : c.rpc->Send(static_cast<uint8_t>(op), net::AsBytes(c.send_buf));
      if (!id.ok()) return Note(s, id.status()).WithContext(c.rpc->address());
      c.pending.push_back({IsPush(op) ? PendingOp::kPush : PendingOp::kPull, *id, first + at,
                           n, bytes});
      c.in_flight_bytes += bytes;
    }
    return Status::OK();
  }
};


}  // namespace virga
