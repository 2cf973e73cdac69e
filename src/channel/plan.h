// The items of a channel job and which worker slot trains on which.
//
// Items are fixed slices of the train partitions (rows_per_item rows, never
// crossing a partition), numbered k = 0 .. items_per_epoch - 1 in partition
// order; item id = epoch * items_per_epoch + k. Each epoch visits the
// partitions in a seeded shuffled order, and slot s of n takes the s-th
// contiguous run of 1/n of that epoch's items (so a slot streams about 1/n
// of the partitions, one after another). A slot's list is its items of
// every epoch, epoch by epoch; one round trains on one item. The scheduler
// and every function compute the same plan from the manifest.
#pragma once

#include <cstdint>
#include <vector>

#include "virga/dataset.h"

namespace virga::channel {

struct ChannelItem {
  uint32_t epoch = 0;
  uint32_t id = 0;         // epoch * items_per_epoch + k
  uint32_t partition = 0;  // index into the manifest's train partitions
  uint32_t begin = 0, end = 0;  // rows [begin, end) of the partition
};

struct ChannelPlan {
  uint32_t items_per_epoch = 0;
  // Per item k of an epoch: its partition and rows.
  std::vector<uint32_t> item_partition, item_rows;
  std::vector<std::vector<ChannelItem>> slots;  // slot -> its list
};

// REQUIRES: slots >= 1, rows_per_item >= 1.
ChannelPlan PlanChannel(const std::vector<PartitionInfo>& partitions, uint32_t epochs, uint32_t slots,
                        uint32_t rows_per_item, uint64_t seed);

}  // namespace virga::channel
