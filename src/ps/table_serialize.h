// The serialized form of a table (Table::Serialize / Table::Restore).
// Little-endian; format version 1:
//
//   [0, 4)    magic "VGTB"
//   [4, 6)    format version, u16 (1)
//   [6, 8)    reserved, u16 (0)
//   [8, 16)   body size in bytes, u64 (everything after this 24-byte header)
//   [16, 24)  checksum, u64: XXH3-64 of the body seeded with XXH3-64 of
//             header bytes [0, 16), so it covers every other header byte
//   body:
//     u16 name length, name bytes
//     u8 table kind, u8 init kind, u8 optimizer kind, u8 lr schedule
//     u32 width, u64 dense_rows, f32 init_scale, u64 seed
//     f32 learning_rate, l1, l2, momentum, beta1, beta2, epsilon,
//         initial_accumulator, ftrl_beta, clip, decay_rate
//     u64 decay_steps
//     u64 table version, u64 row count
//     rows, each RowFloats(config) f32 = [weights | optimizer state]:
//       sparse: u64 key then the row, in shard then arena order;
//       dense:  the row only, in key order (row count = dense_rows).
//
// A reader rejects (Corruption) any other magic, version or reserved value,
// a size that disagrees with the bytes, a checksum mismatch, an invalid
// config, or a row count that does not fill the body exactly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ps/table.h"

namespace virga::ps::internal {

constexpr uint16_t kTableFormatVersion = 1;
constexpr size_t kTableHeaderSize = 24;

// Appends one table to *out: the constructor writes the header and config,
// rows follow, Finish() patches the row count, body size and checksum.
class TableWriter {
 public:
  TableWriter(const TableConfig& config, uint64_t version, std::string* out);
  TableWriter(const TableWriter&) = delete;
  TableWriter& operator=(const TableWriter&) = delete;

  // Sparse: key then the row's `n` floats.
  void AddKeyedRow(uint64_t key, const float* row, uint32_t n);
  // Dense: `rows` consecutive rows of row floats each, `n` floats in all.
  void AddRows(const float* data, size_t n, uint64_t rows);
  void Finish();

 private:
  std::string* out_;
  size_t start_;     // offset of the header in *out_
  size_t count_at_;  // offset of the row count in *out_
  uint64_t rows_ = 0;
};

struct ParsedTable {
  TableConfig config;
  uint64_t version = 0;
  uint64_t rows = 0;
  std::string_view payload;  // the rows, size checked against config and count
};

// Checks everything listed above; errors are Corruption prefixed by source.
Result<ParsedTable> ParseTable(std::string_view bytes, std::string_view source);

}  // namespace virga::ps::internal
