#include "scheduler/work_items.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace virga::sched {

ItemPlan PlanItems(const std::vector<PartitionInfo>& partitions, uint32_t epochs,
                   uint32_t workers, uint32_t rows_per_item, uint64_t seed) {
  ItemPlan plan;
  uint64_t total_rows = 0, max_rows = 0;
  for (const auto& p : partitions) {
    total_rows += p.rows;
    max_rows = std::max(max_rows, p.rows);
  }
  if (rows_per_item == 0) {
    const uint64_t want_items = 8ull * std::max<uint32_t>(workers, 1);
    uint64_t rows = (total_rows + want_items - 1) / want_items;
    rows = std::clamp<uint64_t>(rows, 256, std::max<uint64_t>(max_rows, 1));
    rows_per_item = static_cast<uint32_t>(rows);
  }
  plan.rows_per_item = rows_per_item;

  struct Slice {
    uint32_t partition;
    uint64_t begin, end;
  };
  std::vector<Slice> slices;
  for (uint32_t p = 0; p < partitions.size(); ++p) {
    for (uint64_t b = 0; b < partitions[p].rows; b += rows_per_item) {
      const uint64_t e = std::min<uint64_t>(partitions[p].rows, b + rows_per_item);
      slices.push_back({p, b, e});
      plan.item_partition.push_back(p);
      plan.item_rows.push_back(static_cast<uint32_t>(e - b));
    }
  }
  plan.items_per_epoch = static_cast<uint32_t>(slices.size());

  std::mt19937_64 rng(seed);
  std::vector<uint32_t> order(slices.size());
  plan.payloads.reserve(static_cast<size_t>(epochs) * slices.size());
  for (uint32_t epoch = 0; epoch < epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t pos : order) {
      const Slice& s = slices[pos];
      const uint64_t index = static_cast<uint64_t>(epoch) * slices.size() + pos;
      plan.payloads.push_back(std::to_string(epoch) + " " + std::to_string(index) + " " +
                              partitions[s.partition].key + " " + std::to_string(s.begin) + " " +
                              std::to_string(s.end));
    }
  }
  return plan;
}

}  // namespace virga::sched
