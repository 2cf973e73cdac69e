#include "channel/plan.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace virga::channel {

ChannelPlan PlanChannel(const std::vector<PartitionInfo>& partitions, uint32_t epochs, uint32_t slots,
                        uint32_t rows_per_item, uint64_t seed) {
  ChannelPlan plan;
  plan.slots.resize(slots);
  // Items of each partition, in partition order: first item and count.
  std::vector<uint32_t> first(partitions.size()), count(partitions.size());
  for (uint32_t p = 0; p < partitions.size(); ++p) {
    first[p] = static_cast<uint32_t>(plan.item_rows.size());
    for (uint64_t b = 0; b < partitions[p].rows; b += rows_per_item) {
      plan.item_partition.push_back(p);
      plan.item_rows.push_back(static_cast<uint32_t>(std::min<uint64_t>(rows_per_item, partitions[p].rows - b)));
    }
    count[p] = static_cast<uint32_t>(plan.item_rows.size()) - first[p];
  }
  plan.items_per_epoch = static_cast<uint32_t>(plan.item_rows.size());
  const uint64_t k_total = plan.items_per_epoch;
  std::vector<uint32_t> order(partitions.size());
  std::vector<uint32_t> epoch_items;  // item k in this epoch's visiting order
  epoch_items.reserve(k_total);
  for (uint32_t e = 0; e < epochs; ++e) {
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(seed * 1000003u + e);
    std::shuffle(order.begin(), order.end(), rng);
    epoch_items.clear();
    for (uint32_t p : order) {
      for (uint32_t i = 0; i < count[p]; ++i) epoch_items.push_back(first[p] + i);
    }
    for (uint32_t s = 0; s < slots; ++s) {
      const uint64_t lo = k_total * s / slots, hi = k_total * (s + 1) / slots;
      for (uint64_t j = lo; j < hi; ++j) {
        const uint32_t k = epoch_items[j];
        const uint32_t p = plan.item_partition[k];
        ChannelItem item;
        item.epoch = e;
        item.id = e * plan.items_per_epoch + k;
        item.partition = p;
        item.begin = (k - first[p]) * rows_per_item;
        item.end = item.begin + plan.item_rows[k];
        plan.slots[s].push_back(item);
      }
    }
  }
  return plan;
}

}  // namespace virga::channel
