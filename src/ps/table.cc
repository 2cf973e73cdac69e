// TableConfig validation, the factory and Restore, and the helpers of
// table_internal.h shared by both table kinds.
#include "ps/table.h"
#include "ps/replica.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "ps/dense_table.h"
#include "ps/replica.h"
#include "ps/sparse_table.h"
#include "ps/table_internal.h"
#include "ps/table_serialize.h"

namespace virga::ps {

// Limits of a table config (internal linkage; outside the anonymous
// namespace so TableConfig::Validate in namespace virga can name them).
static constexpr uint32_t kMaxWidth = 1024;
static constexpr size_t kMaxTableNameBytes = 128;
static constexpr uint64_t kMaxDenseBytes = uint64_t{16} << 30;

static bool NameChar(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '-';
}

namespace {

// Hash of (seed, key, column, stream) -> 64 well-mixed bits.
uint64_t InitHash(uint64_t seed, uint64_t key, uint64_t column, uint64_t stream) {
  uint64_t h = internal::MixKey(seed ^ 0x9e3779b97f4a7c15ull);
  h = internal::MixKey(h ^ key);
  return internal::MixKey(h ^ (column << 1 | stream));
}

// [0, 1) from the top 24 bits: exact in a float.
float Unit24(uint64_t h) { return static_cast<float>(h >> 40) * 0x1p-24f; }

}  // namespace
}  // namespace virga::ps

namespace virga {

Status TableConfig::Validate() const {
  using ps::kMaxWidth;
  using ps::kMaxTableNameBytes;
  using ps::kMaxDenseBytes;
  using ps::NameChar;
  namespace internal = ps::internal;
  auto bad = [&](const std::string& m) {
    return Status::InvalidArgument("table '" + name + "': " + m);
  };
  if (name.empty() || name.size() > kMaxTableNameBytes) {
    return bad("name: must be 1..128 bytes, got " + std::to_string(name.size()));
  }
  for (char ch : name) {
    if (!NameChar(ch)) return bad("name: only [A-Za-z0-9._-] allowed");
  }
  if (kind != TableKind::kSparse && kind != TableKind::kDense) {
    return bad("kind: unknown value " + std::to_string(static_cast<int>(kind)));
  }
  if (width < 1 || width > kMaxWidth) {
    return bad("width: must be in [1, 1024], got " + std::to_string(width));
  }
  if (init != InitKind::kZeros && init != InitKind::kUniform && init != InitKind::kNormal) {
    return bad("init: unknown value " + std::to_string(static_cast<int>(init)));
  }
  if (!std::isfinite(init_scale) || init_scale < 0) {
    return bad("init_scale: must be finite and >= 0, got " + std::to_string(init_scale));
  }
  if (Status s = optimizer.Validate(); !s.ok()) return bad(s.message());
  if (kind == TableKind::kSparse && dense_rows != 0) {
    return bad("dense_rows: must be 0 for a sparse table, got " + std::to_string(dense_rows));
  }
  if (kind == TableKind::kDense) {
    const uint64_t row_bytes = uint64_t{internal::RowFloats(*this)} * sizeof(float);
    if (dense_rows == 0 || dense_rows > kMaxDenseBytes / row_bytes) {
      return bad("dense_rows: must be in [1, " + std::to_string(kMaxDenseBytes / row_bytes) +
                 "] (16 GiB of weights and state), got " + std::to_string(dense_rows));
    }
  }
  return Status::OK();
}

}  // namespace virga

namespace virga::ps {

Result<std::unique_ptr<Table>> Table::Create(const TableConfig& config) {
  VIRGA_RETURN_IF_ERROR(config.Validate());
  if (config.kind == TableKind::kDense) return std::unique_ptr<Table>(new DenseTable(config));
  return std::unique_ptr<Table>(new SparseTable(config));
}

Result<std::unique_ptr<Table>> Table::Restore(std::string_view bytes, std::string_view source) {
  VIRGA_ASSIGN_OR_RETURN(internal::ParsedTable parsed, internal::ParseTable(bytes, source));
  if (parsed.config.kind == TableKind::kDense) {
    auto table = std::make_unique<DenseTable>(parsed.config);
    table->LoadRows(parsed);
    return std::unique_ptr<Table>(std::move(table));
  }
  auto table = std::make_unique<SparseTable>(parsed.config);
  VIRGA_RETURN_IF_ERROR(table->LoadRows(parsed, source));
  return std::unique_ptr<Table>(std::move(table));
}

namespace internal {

void InitWeights(const TableConfig& c, uint64_t key, float* w) {
  switch (c.init) {
    case InitKind::kZeros:
      std::memset(w, 0, c.width * sizeof(float));
      return;
    case InitKind::kUniform:
      for (uint32_t j = 0; j < c.width; ++j) {
        w[j] = c.init_scale * (2.0f * Unit24(InitHash(c.seed, key, j, 0)) - 1.0f);
      }
      return;
    case InitKind::kNormal:
      // Box-Muller on two hashed uniforms; u1 in (0, 1] keeps log finite.
      for (uint32_t j = 0; j < c.width; ++j) {
        const double u1 = static_cast<double>((InitHash(c.seed, key, j, 0) >> 11) + 1) * 0x1p-53;
        const double u2 = static_cast<double>(InitHash(c.seed, key, j, 1) >> 11) * 0x1p-53;
        const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
        w[j] = static_cast<float>(c.init_scale * z);
      }
      return;
  }
}

void InitRow(const TableConfig& c, uint64_t key, float* row) {
  InitWeights(c, key, row);
  const size_t state = RowFloats(c) - c.width;
  InitOptimizerState(c.optimizer, std::span<float>(row + c.width, state));
}

Status CheckReplicaSizes(const TableConfig& c, size_t keys, size_t values, uint32_t steps,
                         const char* what) {
  if (keys > UINT32_MAX) {
    return Status::InvalidArgument("table '" + c.name + "': " + std::to_string(keys) +
                                   " keys in one call (max 2^32 - 1)");
  }
  const uint32_t per_key = ReplicaRowFloats(c);
  if (values != keys * per_key) {
    return Status::InvalidArgument("table '" + c.name + "': " + what + " holds " +
                                   std::to_string(values) + " floats, expected " +
                                   std::to_string(keys) + " keys * " + std::to_string(per_key) +
                                   " replica floats");
  }
  if (steps == 0) return Status::InvalidArgument("table '" + c.name + "': a delta of 0 steps");
  return Status::OK();
}

Status CheckSizes(const TableConfig& c, size_t keys, size_t values, const char* what) {
  if (keys > UINT32_MAX) {
    return Status::InvalidArgument("table '" + c.name + "': " + std::to_string(keys) +
                                   " keys in one call (max 2^32 - 1)");
  }
  if (values != keys * c.width) {
    return Status::InvalidArgument("table '" + c.name + "': " + what + " holds " +
                                   std::to_string(values) + " floats, expected " +
                                   std::to_string(keys) + " keys * width " +
                                   std::to_string(c.width));
  }
  return Status::OK();
}

ShardGroups& ThreadShardGroups() {
  thread_local ShardGroups groups;
  return groups;
}

}  // namespace internal
}  // namespace virga::ps
