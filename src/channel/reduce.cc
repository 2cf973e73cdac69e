#include "channel/reduce.h"

#include "ps/optimizer_kernels.h"

namespace virga::channel {

ChunkReducer::ChunkReducer(const OptimizerConfig& config, uint64_t max_chunk_size)
    : config_(config), acc_(max_chunk_size, 0.0f), mark_(max_chunk_size, 0) {}

void ChunkReducer::Begin(uint64_t size) {
  for (uint32_t i : touched_) {
    acc_[i] = 0.0f;
    mark_[i] = 0;
  }
  touched_.clear();
  size_ = size;
}

bool ChunkReducer::Add(std::span<const uint32_t> index, std::span<const float> value) {
  for (uint32_t i : index) {
    if (i >= size_) return false;
  }
  for (size_t k = 0; k < index.size(); ++k) {
    const uint32_t i = index[k];
    acc_[i] += value[k];
    if (!mark_[i]) {
      mark_[i] = 1;
      touched_.push_back(i);
    }
  }
  return true;
}

void ChunkReducer::Apply(float lr, std::span<float> weights, std::span<float> state) {
  optimizer_internal::WithKernel(config_, lr, [&](const auto& kernel) {
    constexpr int kWidth = std::decay_t<decltype(kernel)>::kStateWidth;
    float* w = weights.data();
    float* s = state.data();
    for (uint32_t i : touched_) kernel(w + i, s + size_t{i} * kWidth, acc_[i]);
  });
  Begin(size_);
}

}  // namespace virga::channel
