#include "ps/replica.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

#include "ps/optimizer_kernels.h"

namespace virga::ps {

bool WeightFromState(OptimizerKind kind) { return kind == OptimizerKind::kFtrl; }

bool ReplicaCarriesWeights(const OptimizerConfig& optimizer, InitKind init) {
  return !WeightFromState(optimizer.kind) || init != InitKind::kZeros;
}

uint32_t ReplicaRowFloats(const OptimizerConfig& optimizer, uint32_t width, InitKind init) {
  const auto s = static_cast<uint32_t>(OptimizerStateWidth(optimizer.kind));
  return width * (s + (ReplicaCarriesWeights(optimizer, init) ? 1 : 0));
}

ReplicaRows::ReplicaRows(const TableConfig& c, float lr)
    : width_(c.width),
      floats_(ReplicaRowFloats(c)),
      skip_(ReplicaCarriesWeights(c.optimizer, c.init) ? 0 : c.width),
      ftrl_(WeightFromState(c.optimizer.kind)),
      settle_(c.optimizer, lr) {}

void Replica::Reset(const OptimizerConfig& optimizer, uint32_t width, InitKind init,
                    uint32_t keys) {
  optimizer_ = optimizer;
  width_ = width;
  keys_ = keys;
  state_width_ = static_cast<uint32_t>(OptimizerStateWidth(optimizer.kind));
  carries_ = ReplicaCarriesWeights(optimizer, init);
  ftrl_ = WeightFromState(optimizer.kind);
  row_floats_ = ReplicaRowFloats(optimizer, width, init);
  const size_t n = size_t{keys} * row_floats_;
  // Grow only: the buffers keep the capacity of the largest round.
  if (base_.size() < n) base_.resize(n);
  if (delta_.size() < n) delta_.resize(n);
  if (w_.size() < size_t{keys} * width) w_.resize(size_t{keys} * width);
  if (s_.size() < size_t{keys} * width * state_width_) s_.resize(size_t{keys} * width * state_width_);
}

void Replica::Load(float lr) {
  const size_t sw = size_t{width_} * state_width_;  // state floats per key
  const size_t wcols = carries_ ? width_ : 0;
  for (size_t k = 0; k < keys_; ++k) {
    const float* row = &base_[k * row_floats_];
    if (carries_) {
      std::memcpy(&w_[k * width_], row, width_ * sizeof(float));
    } else {
      std::fill_n(&w_[k * width_], width_, 0.0f);  // the table's initial weight
    }
    if (sw) std::memcpy(&s_[k * sw], row + wcols, sw * sizeof(float));
  }
  if (!ftrl_) return;
  const FtrlSettle settle(optimizer_, lr);
  for (size_t k = 0; k < keys_; ++k) settle(&w_[k * width_], &s_[k * sw], width_);
}

void Replica::Step(std::span<const uint32_t> touched, std::span<float> grads, float lr) {
  optimizer_internal::WithKernel(optimizer_, lr, [&](const auto& kernel) {
    constexpr uint32_t kSw = std::remove_cvref_t<decltype(kernel)>::kStateWidth;
    float* w = w_.data();
    float* s = s_.data();
    float* g = grads.data();
    if (width_ == 1) {  // the linear models: no inner loop
      for (uint32_t t : touched) {
        kernel(w + t, s + size_t{t} * kSw, g[t]);
        g[t] = 0.0f;
      }
      return;
    }
    for (uint32_t t : touched) {
      const size_t at = size_t{t} * width_;
      for (uint32_t c = 0; c < width_; ++c) {
        kernel(w + at + c, s + (at + c) * kSw, g[at + c]);
        g[at + c] = 0.0f;
      }
    }
  });
}

void Replica::AddDeltaOf(const Replica& prev, std::span<const uint32_t> prev_slot) {
  assert(prev_slot.size() == keys_ && prev.row_floats_ == row_floats_);
  const float* d = prev.delta_.data();
  for (size_t k = 0; k < keys_; ++k) {
    const uint32_t e = prev_slot[k];
    if (e == kNoSlot) continue;
    assert(e < prev.keys_);
    float* row = &base_[k * row_floats_];
    const float* dr = d + size_t{e} * row_floats_;
    for (uint32_t j = 0; j < row_floats_; ++j) row[j] += dr[j];
  }
}

std::span<const float> Replica::Delta() {
  const size_t sw = size_t{width_} * state_width_;
  const size_t wcols = carries_ ? width_ : 0;
  for (size_t k = 0; k < keys_; ++k) {
    const float* base = &base_[k * row_floats_];
    float* d = &delta_[k * row_floats_];
    for (size_t c = 0; c < wcols; ++c) d[c] = w_[k * width_ + c] - base[c];
    for (size_t j = 0; j < sw; ++j) d[wcols + j] = s_[k * sw + j] - base[wcols + j];
  }
  return {delta_.data(), size_t{keys_} * row_floats_};
}

}  // namespace virga::ps
