#include "ps/dense_table.h"

#include <algorithm>
#include <cstring>

#include "ps/optimizer_kernels.h"
#include "ps/replica.h"

namespace virga::ps {

using internal::kShards;

namespace {
constexpr uint64_t kBlockRows = uint64_t{1} << internal::kDenseBlockBits;
}  // namespace

DenseTable::DenseTable(const TableConfig& config)
    : config_(config),
      row_floats_(internal::RowFloats(config)),
      data_(config.dense_rows * row_floats_),
      locks_(new std::mutex[kShards]) {
  for (uint64_t key = 0; key < config_.dense_rows; ++key) internal::InitRow(config_, key, Row(key));
}

Status DenseTable::CheckKeys(std::span<const uint64_t> keys) const {
  for (uint64_t key : keys) {
    if (key >= config_.dense_rows) {
      return Status::OutOfRange("table '" + config_.name + "': key " + std::to_string(key) +
                                " >= dense_rows " + std::to_string(config_.dense_rows));
    }
  }
  return Status::OK();
}

template <typename Fn>
void DenseTable::ForEachKey(std::span<const uint64_t> keys, Fn fn) {
  internal::ShardGroups& g = internal::ThreadShardGroups();
  internal::GroupByShard(
      keys, [](uint64_t key) { return key; }, [](uint64_t key) { return LockOf(key); }, &g);
  for (uint32_t s = 0; s < kShards; ++s) {
    if (g.begin[s] == g.begin[s + 1]) continue;
    std::lock_guard<std::mutex> lock(locks_[s]);
    for (uint32_t j = g.begin[s]; j < g.begin[s + 1]; ++j) fn(g.order[j]);
  }
}

Status DenseTable::Pull(std::span<const uint64_t> keys, std::span<float> out, uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(internal::CheckSizes(config_, keys.size(), out.size(), "pull output"));
  VIRGA_RETURN_IF_ERROR(CheckKeys(keys));
  const uint64_t v = version_.load(std::memory_order_acquire);
  const size_t width = config_.width;
  ForEachKey(keys, [&](uint32_t i) {
    if (width == 1) {  // the common linear model: no memcpy call
      out[i] = *Row(keys[i]);
    } else {
      std::memcpy(out.data() + i * width, Row(keys[i]), width * sizeof(float));
    }
  });
  counters_.CountPull(keys.size());
  if (version) *version = v;
  return Status::OK();
}

Status DenseTable::PullState(std::span<const uint64_t> keys, std::span<float> out,
                             uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(
      internal::CheckReplicaSizes(config_, keys.size(), out.size(), 1, "state pull output"));
  VIRGA_RETURN_IF_ERROR(CheckKeys(keys));
  const uint64_t v = version_.load(std::memory_order_acquire);
  const ReplicaRows replica(config_, 0.0f);
  const uint32_t rf = replica.floats();
  ForEachKey(keys, [&](uint32_t i) { replica.Extract(Row(keys[i]), out.data() + size_t{i} * rf); });
  counters_.CountPull(keys.size());
  if (version) *version = v;
  return Status::OK();
}

Status DenseTable::PushDelta(std::span<const uint64_t> keys, std::span<const float> deltas,
                             uint32_t steps, uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(
      internal::CheckReplicaSizes(config_, keys.size(), deltas.size(), steps, "state delta"));
  VIRGA_RETURN_IF_ERROR(CheckKeys(keys));
  const float lr =
      ScheduledLearningRate(config_.optimizer, version_.load(std::memory_order_relaxed));
  const ReplicaRows replica(config_, lr);
  const uint32_t rf = replica.floats();
  ForEachKey(keys, [&](uint32_t i) { replica.Add(Row(keys[i]), deltas.data() + size_t{i} * rf); });
  counters_.CountPush(keys.size());
  const uint64_t v = version_.fetch_add(steps, std::memory_order_acq_rel) + steps;
  if (version) *version = v;
  return Status::OK();
}

Status DenseTable::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                        uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(internal::CheckSizes(config_, keys.size(), grads.size(), "push gradient"));
  VIRGA_RETURN_IF_ERROR(CheckKeys(keys));
  const float lr =
      ScheduledLearningRate(config_.optimizer, version_.load(std::memory_order_relaxed));
  const uint32_t width = config_.width;
  optimizer_internal::WithKernel(config_.optimizer, lr, [&](const auto& kernel) {
    ForEachKey(keys, [&](uint32_t i) {
      optimizer_internal::ApplyRow(kernel, Row(keys[i]), grads.data() + size_t{i} * width, width);
    });
  });
  counters_.CountPush(keys.size());
  const uint64_t v = version_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (version) *version = v;
  return Status::OK();
}

TableStats DenseTable::stats() const {
  TableStats st;
  st.rows = config_.dense_rows;
  st.bytes = data_.size() * sizeof(float);
  st.version = version();
  counters_.Fill(&st);
  return st;
}

Status DenseTable::Serialize(std::string* out) const {
  internal::TableWriter writer(config_, version(), out);
  for (uint64_t first = 0; first < config_.dense_rows; first += kBlockRows) {
    const uint64_t n = std::min(kBlockRows, config_.dense_rows - first);
    std::lock_guard<std::mutex> lock(locks_[LockOf(first)]);
    writer.AddRows(Row(first), n * row_floats_, n);
  }
  writer.Finish();
  return Status::OK();
}

void DenseTable::ForEach(const std::function<void(uint64_t, std::span<const float>)>& fn) const {
  const uint32_t width = config_.width;
  std::vector<float> weights;
  for (uint64_t first = 0; first < config_.dense_rows; first += kBlockRows) {
    const uint64_t n = std::min(kBlockRows, config_.dense_rows - first);
    weights.resize(n * width);
    {
      std::lock_guard<std::mutex> lock(locks_[LockOf(first)]);
      for (uint64_t r = 0; r < n; ++r) {
        std::memcpy(&weights[r * width], Row(first + r), width * sizeof(float));
      }
    }
    for (uint64_t r = 0; r < n; ++r) {
      fn(first + r, std::span<const float>(&weights[r * width], width));
    }
  }
}

void DenseTable::LoadRows(const internal::ParsedTable& parsed) {
  std::memcpy(data_.data(), parsed.payload.data(), data_.size() * sizeof(float));
  version_.store(parsed.version, std::memory_order_release);
}

}  // namespace virga::ps
