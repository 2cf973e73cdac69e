// ChunkReducer: the reduce step of ScatterReduce for one model chunk.
//
// Sums the sparse gradient chunks of every slot into a dense accumulator,
// then applies the job's optimizer (the parameter server's kernels,
// src/ps/optimizer_kernels.h) to the touched coordinates of the chunk's
// weights and state. Untouched coordinates keep their weights and state, as
// on the server. Allocation: the accumulator is sized once for the largest
// chunk; Add and Apply allocate nothing after the touched list has grown to
// its largest size. Not thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virga/optimizer.h"
#include "virga/status.h"

namespace virga::channel {

class ChunkReducer {
 public:
  // REQUIRES: config.Validate().ok().
  ChunkReducer(const OptimizerConfig& config, uint64_t max_chunk_size);

  // Starts a reduce over a chunk of `size` coordinates (<= max_chunk_size).
  void Begin(uint64_t size);
  // Adds one gradient chunk: value[i] to coordinate index[i] (relative to the
  // chunk). False (nothing added) if an index is >= the chunk's size.
  bool Add(std::span<const uint32_t> index, std::span<const float> value);
  // The summed gradient of coordinate i (tests).
  float sum(uint64_t i) const { return acc_[i]; }
  size_t touched() const { return touched_.size(); }
  // Applies the summed gradient at rate lr to weights (size floats) and state
  // (size * OptimizerStateWidth floats), then clears the accumulator.
  void Apply(float lr, std::span<float> weights, std::span<float> state);

 private:
  OptimizerConfig config_;
  uint64_t size_ = 0;
  std::vector<float> acc_;
  std::vector<uint8_t> mark_;
  std::vector<uint32_t> touched_;
};

}  // namespace virga::channel
