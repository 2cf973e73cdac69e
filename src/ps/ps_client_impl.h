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

// What to do with a reply when it arrives.
struct PendingOp {
  enum Kind { kPull, kPush } kind;
  uint64_t request_id;
};

struct Conn {
  std::unique_ptr<net::RpcClient> rpc;
  std::deque<PendingOp> pending;
  std::string send_buf;
  std::vector<uint64_t> keys;     // this server's share of a pull/push
  std::vector<uint32_t> pos;      // positions of those keys in the caller's array
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

  // Reconnects (with the transport's backoff) after a transport fault, so a
  // restarted or briefly unreachable server costs one failed call, not all.
  Status Ensure(size_t s) {
    Conn& c = conns[s];
    if (!c.broken) return Status::OK();
    c.pending.clear();
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
    net::Reply reply;
    Status st = Note(s, c.rpc->Wait(op.request_id, &reply));
    if (c.broken) {  // the replies still pending will never come
      const bool lost_pull = op.kind == PendingOp::kPull ||
                             std::any_of(c.pending.begin(), c.pending.end(),
                                         [](const PendingOp& p) { return p.kind == PendingOp::kPull; });
      if (lost_pull && pull_status.ok()) pull_status = st.WithContext(c.rpc->address());
      if (push_status.ok()) push_status = st.WithContext(c.rpc->address());
      c.pending.clear();
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
    if (ds.ok() && rows.size() != (conns.size() == 1 ? pull_out.size() : c.pos.size() * w))
      ds = Status::Corruption("pull reply of " + std::to_string(rows.size()) + " floats, expected " +
                              std::to_string(pull_out.size()));
    if (!ds.ok()) {
      if (pull_status.ok()) pull_status = ds.WithContext(c.rpc->address());
      return Status::OK();
    }
    pull_version = std::min(pull_version, version);
    if (conns.size() == 1) {
      std::memcpy(pull_out.data(), rows.data(), rows.size_bytes());
    } else {
      for (size_t i = 0; i < c.pos.size(); ++i)
        std::memcpy(&pull_out[size_t{c.pos[i]} * w], &rows[i * w], w * sizeof(float));
    }
    return Status::OK();
  }

  Status DrainAll(size_t s) {
    while (!conns[s].pending.empty()) VIRGA_RETURN_IF_ERROR(ConsumeOne(s));
    return Status::OK();
  }

  // Splits keys by server into each Conn's keys/pos.
  void Split(std::span<const uint64_t> keys) {
    for (Conn& c : conns) {
      c.keys.clear();
      c.pos.clear();
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      Conn& c = conns[ServerOfKey(keys[i], conns.size())];
      c.keys.push_back(keys[i]);
      c.pos.push_back(static_cast<uint32_t>(i));
    }
  }

  Status SendKeys(size_t s, Op op, std::string_view table, std::span<const uint64_t> keys,
                  std::span<const float> grads) {
    VIRGA_RETURN_IF_ERROR(Ensure(s));
    Conn& c = conns[s];
    PayloadWriter w(&c.send_buf);
    w.Str(table);
    w.Array(keys);
    if (op == Op::kPush) w.Array(grads);
    auto id = c.rpc->Send(static_cast<uint8_t>(op), net::AsBytes(c.send_buf));
    if (!id.ok()) return Note(s, id.status()).WithContext(c.rpc->address());
    c.pending.push_back({op == Op::kPull ? PendingOp::kPull : PendingOp::kPush, *id});
    return Status::OK();
  }
};


}  // namespace virga
