// The partition object: a binary, versioned, compressed and checksummed block
// of rows. Layout: docs/object-layout.md. A corrupted or truncated object
// decodes to a Corruption status naming its key, never to garbage rows.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

enum class Codec : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

// "none", "lz4", "zstd".
Result<Codec> ParseCodecName(std::string_view name);
const char* CodecName(Codec codec);

struct PartitionEncodeOptions {
  Codec codec = Codec::kLz4;  // lz4 decodes fastest; zstd is smaller
  int zstd_level = 3;         // used with kZstd only
};

// Encodes `rows` into *out (capacity reused). Values are omitted when
// rows.binary(). offsets[0] may be non-zero (a slice); it is rebased to 0.
Status EncodePartition(const RowBlockView& rows, const PartitionEncodeOptions& options,
                       std::string* out);

// Owns the decoded arrays of one partition; reuse one across decodes so
// steady-state decoding allocates nothing.
class PartitionBuffer {
 public:
  RowBlockView view() const;
  size_t rows() const { return labels_.size(); }
  // Bytes held by the buffers (for memory accounting).
  size_t capacity_bytes() const;

 private:
  friend Status DecodePartition(std::string_view, std::string_view, PartitionBuffer*);
  std::vector<float> labels_;
  std::vector<uint32_t> offsets_;
  std::vector<uint32_t> indices_;
  std::vector<float> values_;
  std::string scratch_;  // decompressed payload
};

// Verifies and decodes `bytes` (the object stored under `key`, used in error
// messages) into *out.
Status DecodePartition(std::string_view bytes, std::string_view key, PartitionBuffer* out);

}  // namespace virga
