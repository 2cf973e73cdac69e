// Replicas: local training against the parameter server (docs/training.md,
// "Local steps").
//
// A worker training locally pulls, once per round of minibatches, the rows of
// every key the round touches *with their optimizer state* (PULL_STATE),
// applies the table's optimizer itself after every minibatch, and pushes back
// what changed (PUSH_DELTA), which the server adds to its rows. Optimizer
// state that is a sum over updates (Adagrad's and FTRL's n, FTRL's z) merges
// exactly across workers by addition; the weights of an optimizer whose
// weight is a closed form of its state (FTRL) are recomputed from the merged
// state instead of being added.
//
// The replica row of a key (what PULL_STATE sends and PUSH_DELTA adds) is the
// stored row [width weights | width * S state] without the weights when the
// state determines them: FTRL 2 floats per coordinate (z, n), Adagrad 2 (w,
// n), SGD 1 (w).
//
// Replica holds one round's rows on the worker: the weights the model reads
// (num_keys * width, indexed by slot like a pull's output), the state, and
// the rows as pulled (the base of the delta). Allocation: none once it has
// held a round of its largest size. Not thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ps/optimizer_kernels.h"
#include "virga/optimizer.h"
#include "virga/table_config.h"

namespace virga::ps {

// FTRL's weight is a closed form of its state (z, n) once the row has been
// updated; a row never updated holds its initial weight (zero, or random for
// the factorization models), which its state does not give.
bool WeightFromState(OptimizerKind kind);
// Whether replica rows carry the weights: always, except FTRL's over a table
// that starts at zero (where the state gives every weight).
bool ReplicaCarriesWeights(const OptimizerConfig& optimizer, InitKind init);
// Floats per key of a replica row.
uint32_t ReplicaRowFloats(const OptimizerConfig& optimizer, uint32_t width, InitKind init);
inline uint32_t ReplicaRowFloats(const TableConfig& c) {
  return ReplicaRowFloats(c.optimizer, c.width, c.init);
}

// FTRL's weights from its state, for the coordinates a row's update touched
// (z != 0 or n past its start): the others keep the weight they have.
struct FtrlSettle {
  optimizer_internal::FtrlKernel<true> kernel;
  float n0;  // initial_accumulator
  FtrlSettle(const OptimizerConfig& o, float lr)
      : kernel{optimizer_internal::GradPrep<true>(o), lr, o.ftrl_beta, o.l1, o.l2},
        n0(o.initial_accumulator) {}
  // w[0 .. width) from state[0 .. 2 * width) = (z, n) per coordinate.
  void operator()(float* w, const float* state, uint32_t width) const {
    for (uint32_t i = 0; i < width; ++i) {
      const float* zn = state + 2 * i;
      if (zn[0] != 0.0f || zn[1] > n0) kernel.Settle(w + i, zn);
    }
  }
};

// How a table's stored rows and replica rows map onto each other; built
// once per call, applied per key (inline: the server's hot loop).
class ReplicaRows {
 public:
  // `lr`: the scheduled rate, for weights the state determines.
  ReplicaRows(const TableConfig& c, float lr);
  uint32_t floats() const { return floats_; }

  // The replica row of a stored row (floats() floats to out).
  void Extract(const float* row, float* out) const {
    std::memcpy(out, row + skip_, floats_ * sizeof(float));
  }
  // Adds a replica delta to a stored row, then recomputes the weights the
  // state determines (FTRL's closed form, as its kernel writes it).
  void Add(float* row, const float* delta) const {
    float* part = row + skip_;
    for (uint32_t j = 0; j < floats_; ++j) part[j] += delta[j];
    if (ftrl_) settle_(row, row + width_, width_);
  }

 private:
  uint32_t width_, floats_, skip_;  // skip_: weights not carried (width or 0)
  bool ftrl_;
  FtrlSettle settle_;
};

class Replica {
 public:
  // Sizes the replica for `keys` keys of a table of `width` under
  // `optimizer` starting at `init`; rows() is then the buffer a PULL_STATE
  // reply goes to.
  void Reset(const OptimizerConfig& optimizer, uint32_t width, InitKind init, uint32_t keys);
  std::span<float> rows() { return {base_.data(), size_t{keys_} * row_floats_}; }

  // After the pull landed in rows(): the weights and state start from it.
  // `lr` is the scheduled rate (for weights determined by the state).
  void Load(float lr);

  // The weights the model reads: keys * width floats, by slot.
  std::span<const float> weights() const { return {w_.data(), size_t{keys_} * width_}; }

  // Applies grads[slot * width + c] (for every slot in `touched`, each once)
  // with the optimizer at rate lr, then zeroes those gradients.
  void Step(std::span<const uint32_t> touched, std::span<float> grads, float lr);

  // The change since Load, as replica rows (keys * ReplicaRowFloats floats).
  // It stays readable (delta()) until the next Reset.
  std::span<const float> Delta();
  std::span<const float> delta() const { return {delta_.data(), size_t{keys_} * row_floats_}; }

  // Before Load: adds `prev`'s delta to the pulled rows of the keys both
  // hold: prev_slot[i] is the slot in `prev` of this replica's key i, or
  // kNoSlot (the worker finds them with the previous round's KeyMap). For a
  // pull sent before `prev`'s push reached the server, which it then did not
  // see: the worker still trains on its own last update. REQUIRES:
  // prev.Delta() called, the same optimizer and width, prev_slot.size() ==
  // keys() and every slot but kNoSlot < prev.keys().
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  void AddDeltaOf(const Replica& prev, std::span<const uint32_t> prev_slot);

  uint32_t keys() const { return keys_; }

 private:
  OptimizerConfig optimizer_;
  uint32_t width_ = 1, keys_ = 0, row_floats_ = 1, state_width_ = 0;
  bool carries_ = true;  // replica rows hold the weights
  bool ftrl_ = false;
  std::vector<float> base_;   // rows as pulled
  std::vector<float> w_;      // keys * width
  std::vector<float> s_;      // keys * width * state_width
  std::vector<float> delta_;  // keys * row_floats
};

}  // namespace virga::ps
