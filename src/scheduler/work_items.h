// Work items of a training job: each epoch's shuffled slices of the
// dataset's train partitions (format in include/virga/worker.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "virga/dataset.h"

namespace virga::sched {

struct ItemPlan {
  uint32_t items_per_epoch = 0;
  uint32_t rows_per_item = 0;
  // Per item of one epoch (in partition order): its partition and row count.
  std::vector<uint32_t> item_partition;
  std::vector<uint32_t> item_rows;
  // Every item of every epoch, in queue order ("<epoch> <index> <key> <begin> <end>").
  // Item index = epoch * items_per_epoch + position of the slice in partition order,
  // so index % items_per_epoch identifies the slice whatever the shuffle.
  std::vector<std::string> payloads;
};

// rows_per_item 0 = auto: slices small enough for >= 8 items per worker per
// epoch, but at least 256 rows and at most a whole partition. Each epoch's
// order is a seeded shuffle. Empty partitions are skipped.
ItemPlan PlanItems(const std::vector<PartitionInfo>& partitions, uint32_t epochs,
                   uint32_t workers, uint32_t rows_per_item, uint64_t seed);

}  // namespace virga::sched
