// Feature statistics as the map tasks of a stage produce them: the numeric
// features' FeatureStats plus (index, entries) of the binary ones, which is
// what an exact merge needs (ingest_internal::MergeStatsPieces) at a fraction
// of the size of every feature's full statistics (Criteo's 2^20 hashed
// binary features: ~3 bytes each instead of 40). Not public API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "virga/dataset.h"
#include "virga/status.h"

namespace virga::stage {

struct StatsPiece {
  std::vector<FeatureStat> numeric;                        // sorted by index
  std::vector<std::pair<uint32_t, uint64_t>> binary;       // sorted by index

  // From statistics of every feature (ComputeRowStats): split by IsNumericFeature.
  static StatsPiece FromAll(std::vector<FeatureStat>&& all);
  void Merge(StatsPiece&& other);
};

std::string EncodeStatsPiece(const StatsPiece& piece);
// Corruption naming `key` for anything but EncodeStatsPiece's output.
Result<StatsPiece> DecodeStatsPiece(std::string_view bytes, std::string_view key);

}  // namespace virga::stage
