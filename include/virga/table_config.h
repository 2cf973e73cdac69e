// Configuration and statistics of a model table on the parameter server
// (how many floats per key, how rows start, which optimizer updates them).
#pragma once

#include <cstdint>
#include <string>

#include "virga/optimizer.h"
#include "virga/status.h"

namespace virga {

enum class TableKind : uint8_t { kSparse = 0, kDense = 1 };
enum class InitKind : uint8_t { kZeros = 0, kUniform = 1, kNormal = 2 };

struct TableConfig {
  std::string name;                  // 1..128 bytes of [A-Za-z0-9._-]
  TableKind kind = TableKind::kSparse;
  uint32_t width = 1;                // floats per row (1 linear, k factorization), 1..1024
  uint64_t dense_rows = 0;           // dense tables: keys are [0, dense_rows); sparse: must be 0
  InitKind init = InitKind::kZeros;
  float init_scale = 0.01f;          // uniform [-s, s) or normal(0, s); finite, >= 0
  uint64_t seed = 0;                 // random init is a hash of (seed, key, column)
  OptimizerConfig optimizer;
  // InvalidArgument naming the field ("table 'ctr': width: ..."), including
  // the optimizer's ("table 'ctr': optimizer.l1: ..."). Dense tables are
  // capped at 16 GiB of weights and state.
  Status Validate() const;
};

struct TableStats {
  uint64_t rows = 0;          // rows materialised (pushed at least once, or dense size)
  uint64_t bytes = 0;         // memory held by weights and state: rows * width * (1 + state width) * 4
  uint64_t version = 0;       // applied pushes
  uint64_t pulls = 0, pushes = 0;          // successful calls
  uint64_t keys_pulled = 0, keys_pushed = 0;
};

}  // namespace virga
