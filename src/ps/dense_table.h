// A dense table (see table.h for the contract): keys [0, dense_rows) index
// one array of rows [width weights | width * state width state], all
// materialised with their initial values at creation. Locks are striped:
// rows are cut into 4096-row blocks and block b is guarded by lock b % 64,
// so a call locks each of at most 64 locks once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "ps/table.h"
#include "ps/table_internal.h"
#include "ps/table_serialize.h"

namespace virga::ps {

class DenseTable final : public Table {
 public:
  // REQUIRES: config.Validate().ok() and config.kind == kDense.
  explicit DenseTable(const TableConfig& config);

  const TableConfig& config() const override { return config_; }
  Status Pull(std::span<const uint64_t> keys, std::span<float> out, uint64_t* version) override;
  Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
              uint64_t* version) override;
  Status PullState(std::span<const uint64_t> keys, std::span<float> out,
                   uint64_t* version) override;
  Status PushDelta(std::span<const uint64_t> keys, std::span<const float> deltas, uint32_t steps,
                   uint64_t* version) override;
  uint64_t version() const override { return version_.load(std::memory_order_acquire); }
  TableStats stats() const override;
  Status Serialize(std::string* out) const override;
  void ForEach(const std::function<void(uint64_t, std::span<const float>)>& fn) const override;

  // Restore: copies the parsed rows and version. REQUIRES: a fresh table
  // with parsed.config (ParseTable checked the payload size).
  void LoadRows(const internal::ParsedTable& parsed);

 private:
  static uint32_t LockOf(uint64_t key) {
    return static_cast<uint32_t>(key >> internal::kDenseBlockBits) & (internal::kShards - 1);
  }
  // OutOfRange naming the first key >= dense_rows.
  Status CheckKeys(std::span<const uint64_t> keys) const;
  // fn(i) for every i in [0, keys.size()), under the lock of key i's block:
  // keys are grouped by lock (in this thread's scratch) and each lock is
  // taken once, in ascending order.
  template <typename Fn>
  void ForEachKey(std::span<const uint64_t> keys, Fn fn);

  float* Row(uint64_t key) { return data_.data() + key * row_floats_; }
  const float* Row(uint64_t key) const { return data_.data() + key * row_floats_; }

  const TableConfig config_;
  const uint32_t row_floats_;
  std::vector<float> data_;  // dense_rows rows; row k GUARDED_BY(locks_[LockOf(k)])
  std::unique_ptr<std::mutex[]> locks_;  // internal::kShards of them
  std::atomic<uint64_t> version_{0};
  internal::Counters counters_;
};

}  // namespace virga::ps
