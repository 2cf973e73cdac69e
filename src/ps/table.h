// Model tables held by the parameter server. A table maps 64-bit keys to
// fixed-width rows of floats plus their optimizer state.
//
// Sparse tables are sharded internally (keys spread over 64 shards by a mixed
// hash, each shard with its own lock and open-addressing map into a flat
// arena), so pushes from many connections proceed in parallel; a call locks
// each shard it touches once, and no lock is held across I/O. Dense tables
// hold keys [0, dense_rows) in one array with striped locks. A pull of a key
// never pushed returns its deterministic initial value (zeros, or a seeded
// random init) without inserting it.
//
// Consistency: the unit of atomicity is one row within one call. A push is
// not atomic across shards: a concurrent pull may see some of its rows
// updated and not others (asynchronous SGD, as in Cirrus and ps-lite).
// Thread safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "virga/optimizer.h"
#include "virga/table_config.h"
#include "virga/status.h"

namespace virga::ps {

// TableKind, InitKind, TableConfig and TableStats are public
// (virga/table_config.h): clients create tables with them.
using virga::InitKind;
using virga::TableConfig;
using virga::TableKind;
using virga::TableStats;

class Table {
 public:
  virtual ~Table() = default;
  // InvalidArgument if !config.Validate().ok().
  static Result<std::unique_ptr<Table>> Create(const TableConfig& config);

  virtual const TableConfig& config() const = 0;

  // out.size() must be keys.size() * width (InvalidArgument otherwise); row i
  // goes to out[i * width, +width). Sets *version (optional) to the version
  // observed before reading: the rows reflect at least that many pushes.
  // Dense tables: a key >= dense_rows is OutOfRange naming it, and nothing is
  // written.
  virtual Status Pull(std::span<const uint64_t> keys, std::span<float> out, uint64_t* version) = 0;

  // grads.size() must be keys.size() * width. Applies the optimizer per
  // coordinate (duplicate keys are applied in order) at the learning rate
  // scheduled for the version seen when the push starts, and counts one
  // push. *version (optional) gets the version after this push. Arguments are
  // checked before any row changes: an error leaves the table untouched.
  virtual Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
                      uint64_t* version) = 0;

  // Local training (src/ps/replica.h): the replica rows of keys
  // (out.size() == keys.size() * ReplicaRowFloats(config())), initial rows
  // for keys never pushed, without inserting them; *version as for Pull.
  virtual Status PullState(std::span<const uint64_t> keys, std::span<float> out,
                           uint64_t* version) = 0;
  // Adds replica deltas (same sizes) to the rows of keys (inserting absent
  // ones first), recomputing weights the state determines, and counts
  // `steps` pushes (the worker's minibatches the deltas sum up; >= 1).
  // Arguments are checked before any row changes.
  virtual Status PushDelta(std::span<const uint64_t> keys, std::span<const float> deltas,
                           uint32_t steps, uint64_t* version) = 0;
  virtual uint64_t version() const = 0;
  virtual TableStats stats() const = 0;

  // Appends the whole table (config, version, every row with its optimizer
  // state) to *out in a versioned, self-checking binary form (layout in
  // src/ps/table_serialize.h); Restore rebuilds an identical table. Used by
  // checkpoints and dump/load. Rows are copied one shard at a time: for a
  // consistent snapshot, stop pushes first.
  virtual Status Serialize(std::string* out) const = 0;
  // `bytes` must hold exactly one serialized table. Damaged, truncated or
  // foreign bytes are Corruption naming `source`.
  static Result<std::unique_ptr<Table>> Restore(std::string_view bytes, std::string_view source);

  // Calls fn(key, weights) for every materialised row (dump for export/eval):
  // sparse rows in no particular order, dense rows in key order. fn runs with
  // no lock held (rows are copied out a shard at a time), so it may do I/O or
  // call back into the table.
  virtual void ForEach(const std::function<void(uint64_t, std::span<const float>)>& fn) const = 0;
};

}  // namespace virga::ps
