// The partition object: a binary, versioned, compressed and checksummed block
// of rows. Layout: docs/object-layout.md. A corrupted or truncated object
// decodes to a Corruption status naming its key, never to garbage rows.
//
// In short: a 40-byte little-endian header (magic "VGPT", version, codec,
// flags, rows, nnz, raw and stored payload sizes, XXH3-64 checksum of the
// header and the stored payload), then the payload — labels f32[rows],
// offsets u32[rows+1] (starting at 0), indices u32[nnz], values f32[nnz]
// (absent when every value is 1) — compressed as one block.
//
// Thread safety: the free functions are safe to call concurrently; a
// PartitionBuffer is not (one decoder at a time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

enum class Codec : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

// "none", "lz4", "zstd"; anything else is InvalidArgument.
Result<Codec> ParseCodecName(std::string_view name);
const char* CodecName(Codec codec);

// The format version written by EncodePartition and the only one decoded.
inline constexpr uint16_t kPartitionFormatVersion = 1;
// Bytes before the payload.
inline constexpr size_t kPartitionHeaderSize = 40;

struct PartitionEncodeOptions {
  Codec codec = Codec::kLz4;  // lz4 decodes fastest; zstd is smaller
  int zstd_level = 3;         // used with kZstd only
  // Keep the compressed payload only if it is at least this fraction smaller
  // than the raw one; else store the payload raw (codec none in the object),
  // which decodes fastest (leveldb's rule). 0 keeps the codec's output always.
  double min_saving = 0.125;
};

// Encodes `rows` into *out (capacity reused). Values are omitted when
// rows.binary(). offsets[0] may be non-zero (a slice); it is rebased to 0.
// InvalidArgument when rows or nnz exceed 2^32-1 or the payload exceeds what
// the codec accepts (lz4: ~2 GiB); keep partitions to a few MiB.
Status EncodePartition(const RowBlockView& rows, const PartitionEncodeOptions& options,
                       std::string* out);

// Owns the decoded arrays of one partition; reuse one across decodes so
// steady-state decoding allocates nothing. The arrays live in one block laid
// out exactly as the payload (labels, offsets, indices, values), so a
// compressed payload is decompressed straight into place and a raw one is
// copied once.
class PartitionBuffer {
 public:
  // Valid until the next decode into this buffer. Empty (rows() == 0, one
  // offset) before the first successful decode and after a failed one.
  RowBlockView view() const;
  size_t rows() const { return rows_; }
  // Bytes held by the buffers (for memory accounting).
  size_t capacity_bytes() const { return capacity_; }

 private:
  friend Status DecodePartition(std::string_view, std::string_view, PartitionBuffer*);
  // Returns storage for `bytes` bytes, growing it (by at least half) if needed;
  // its contents are unspecified.
  std::byte* Reserve(size_t bytes);

  // The payload arrays. new std::byte[] implicitly creates the float and
  // uint32_t objects written into it (C++20 [intro.object]).
  std::unique_ptr<std::byte[]> storage_;
  size_t capacity_ = 0;  // bytes of storage_
  uint32_t rows_ = 0;    // 0 also when no decode has succeeded
  uint32_t nnz_ = 0;
  bool has_values_ = false;
};

// Verifies and decodes `bytes` (the object stored under `key`, used in error
// messages) into *out. Every check failure (magic, version, codec, sizes,
// checksum, decompression, offsets) is Corruption "<key>: <reason>"; no input
// makes it read or write out of bounds.
Status DecodePartition(std::string_view bytes, std::string_view key, PartitionBuffer* out);

}  // namespace virga
