#include "virga/partition.h"

#include <lz4.h>
#include <xxhash.h>
#if defined(__x86_64__)
// Routes XXH3 to its SSE2/AVX2/AVX-512 variant at run time: 2-3x the
// checksum speed of the baseline build on the hosts we run on.
#include <xxh_x86dispatch.h>
#endif
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <span>

namespace virga {

// The payload arrays are memcpy'd to and from the object as they lie in
// memory; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "virga assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'V', 'G', 'P', 'T'};
constexpr uint8_t kFlagValues = 0x01;  // the values array is present
constexpr size_t kChecksumOffset = 32;

// The header fields in memory; Put/ParseHeader convert to and from the
// 40-byte wire form (docs/object-layout.md).
struct Header {
  uint16_t version = kPartitionFormatVersion;
  uint8_t codec = 0;
  uint8_t flags = 0;
  uint32_t rows = 0;
  uint32_t nnz = 0;
  uint64_t raw_size = 0;
  uint64_t stored_size = 0;
  uint64_t checksum = 0;
};

template <typename T>
void PutLE(char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
T GetLE(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void PutHeader(const Header& h, char* p) {
  std::memcpy(p, kMagic, 4);
  PutLE<uint16_t>(p + 4, h.version);
  PutLE<uint8_t>(p + 6, h.codec);
  PutLE<uint8_t>(p + 7, h.flags);
  PutLE<uint32_t>(p + 8, h.rows);
  PutLE<uint32_t>(p + 12, h.nnz);
  PutLE<uint64_t>(p + 16, h.raw_size);
  PutLE<uint64_t>(p + 24, h.stored_size);
  PutLE<uint64_t>(p + 32, h.checksum);
}

Header ParseHeader(const char* p) {
  Header h;
  h.version = GetLE<uint16_t>(p + 4);
  h.codec = GetLE<uint8_t>(p + 6);
  h.flags = GetLE<uint8_t>(p + 7);
  h.rows = GetLE<uint32_t>(p + 8);
  h.nnz = GetLE<uint32_t>(p + 12);
  h.raw_size = GetLE<uint64_t>(p + 16);
  h.stored_size = GetLE<uint64_t>(p + 24);
  h.checksum = GetLE<uint64_t>(p + 32);
  return h;
}

// Payload bytes implied by the counts: labels, offsets, indices, values.
uint64_t RawSize(uint64_t rows, uint64_t nnz, bool values) {
  return 4 * rows + 4 * (rows + 1) + 4 * nnz + (values ? 4 * nnz : 0);
}

// XXH3-64 of the stored payload, seeded with XXH3-64 of header bytes [0, 32)
// so that the checksum covers every other header field.
uint64_t Checksum(const char* header, const char* payload, size_t payload_size) {
  const uint64_t seed = XXH3_64bits(header, kChecksumOffset);
  return XXH3_64bits_withSeed(payload, payload_size, seed);
}

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// One decompression context per thread: ZSTD_decompress would allocate one
// per call.
ZSTD_DCtx* ThreadZstdDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

Status Corrupt(std::string_view key, std::string_view reason) {
  std::string m(key);
  m += ": ";
  m += reason;
  return Status::Corruption(std::move(m));
}

// Appends the uncompressed payload of `rows` to *out.
void AppendRawPayload(const RowBlockView& rows, std::string* out) {
  const size_t n = rows.rows();
  const uint32_t base = n ? rows.offsets[0] : 0;
  const size_t nnz = rows.nnz();
  size_t pos = out->size();
  out->resize(pos + RawSize(n, nnz, !rows.binary()));
  char* p = out->data() + pos;
  if (n) std::memcpy(p, rows.labels.data(), 4 * n);
  p += 4 * n;
  for (size_t r = 0; r <= n; ++r, p += 4) PutLE<uint32_t>(p, n ? rows.offsets[r] - base : 0);
  if (nnz == 0) return;
  std::memcpy(p, rows.indices.data() + base, 4 * nnz);
  p += 4 * nnz;
  if (!rows.binary()) std::memcpy(p, rows.values.data() + base, 4 * nnz);
}

// Compresses raw into out[kPartitionHeaderSize..), resizing out to fit.
Status Compress(Codec codec, int level, std::string_view raw, std::string* out) {
  const size_t at = kPartitionHeaderSize;
  if (codec == Codec::kLz4) {
    if (raw.size() > LZ4_MAX_INPUT_SIZE) {
      return Status::InvalidArgument(
          "partition payload too large for lz4: " + std::to_string(raw.size()) + " bytes");
    }
    out->resize(at + LZ4_compressBound(static_cast<int>(raw.size())));
    int n = LZ4_compress_default(raw.data(), out->data() + at, static_cast<int>(raw.size()),
                                 static_cast<int>(out->size() - at));
    if (n <= 0) return Status::Internal("lz4 compression failed");
    out->resize(at + n);
    return Status::OK();
  }
  out->resize(at + ZSTD_compressBound(raw.size()));
  size_t n = ZSTD_compress(out->data() + at, out->size() - at, raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  out->resize(at + n);
  return Status::OK();
}

// Decompresses `stored` into `dst` of exactly h.raw_size bytes.
Status Decompress(const Header& h, std::string_view stored, char* dst, std::string_view key) {
  if (h.codec == static_cast<uint8_t>(Codec::kLz4)) {
    if (h.raw_size > INT_MAX || stored.size() > INT_MAX) return Corrupt(key, "lz4 block too large");
    int n = LZ4_decompress_safe(stored.data(), dst, static_cast<int>(stored.size()),
                                static_cast<int>(h.raw_size));
    if (n < 0) return Corrupt(key, "lz4 payload is malformed");
    if (static_cast<uint64_t>(n) != h.raw_size) {
      return Corrupt(key, "lz4 payload decompressed to " + std::to_string(n) + " bytes, expected " +
                              std::to_string(h.raw_size));
    }
    return Status::OK();
  }
  size_t n = ZSTD_decompressDCtx(ThreadZstdDCtx(), dst, h.raw_size, stored.data(), stored.size());
  if (ZSTD_isError(n)) return Corrupt(key, std::string("zstd payload: ") + ZSTD_getErrorName(n));
  if (n != h.raw_size) {
    return Corrupt(key, "zstd payload decompressed to " + std::to_string(n) + " bytes, expected " +
                            std::to_string(h.raw_size));
  }
  return Status::OK();
}

// Checks the header against itself and the object size, then the checksum.
Status CheckHeader(std::string_view bytes, const Header& h, std::string_view key) {
  if (h.version != kPartitionFormatVersion) {
    return Corrupt(key, "unsupported partition format version " + std::to_string(h.version));
  }
  if (h.codec > static_cast<uint8_t>(Codec::kZstd)) {
    return Corrupt(key, "unknown codec " + std::to_string(h.codec));
  }
  if (h.flags & ~kFlagValues) return Corrupt(key, "unknown flags " + std::to_string(h.flags));
  if (h.raw_size != RawSize(h.rows, h.nnz, h.flags & kFlagValues)) {
    return Corrupt(key, "raw payload size " + std::to_string(h.raw_size) + " does not match " +
                            std::to_string(h.rows) + " rows and " + std::to_string(h.nnz) + " nnz");
  }
  const uint64_t stored = bytes.size() - kPartitionHeaderSize;
  if (h.stored_size != stored) {
    return Corrupt(key, std::string(h.stored_size > stored ? "truncated" : "trailing bytes") +
                            ": header says " + std::to_string(h.stored_size) +
                            " payload bytes, object has " + std::to_string(stored));
  }
  if (h.codec == static_cast<uint8_t>(Codec::kNone) && h.stored_size != h.raw_size) {
    return Corrupt(key, "uncompressed payload size differs from raw size");
  }
  if (Checksum(bytes.data(), bytes.data() + kPartitionHeaderSize, stored) != h.checksum) {
    return Corrupt(key, "checksum mismatch");
  }
  return Status::OK();
}

// offsets must start at 0, never decrease and end at nnz.
Status CheckOffsets(std::span<const uint32_t> offsets, uint32_t nnz, std::string_view key) {
  bool ok = offsets.front() == 0 && offsets.back() == nnz;
  // Branch-free so the loop vectorises; the error path finds the row.
  for (size_t r = 1; r < offsets.size(); ++r) ok &= offsets[r - 1] <= offsets[r];
  if (ok) return Status::OK();
  if (offsets.front() != 0) return Corrupt(key, "offsets[0] is not 0");
  for (size_t r = 1; r < offsets.size(); ++r) {
    if (offsets[r - 1] > offsets[r]) {
      return Corrupt(key, "offsets decrease at row " + std::to_string(r - 1));
    }
  }
  return Corrupt(key, "offsets end at " + std::to_string(offsets.back()) + ", expected nnz " +
                          std::to_string(nnz));
}

}  // namespace

Result<Codec> ParseCodecName(std::string_view name) {
  if (name == "none") return Codec::kNone;
  if (name == "lz4") return Codec::kLz4;
  if (name == "zstd") return Codec::kZstd;
  return Status::InvalidArgument("unknown codec '" + std::string(name) +
                                 "' (expected none, lz4 or zstd)");
}

const char* CodecName(Codec codec) {
  switch (codec) {
    case Codec::kNone:
      return "none";
    case Codec::kLz4:
      return "lz4";
    case Codec::kZstd:
      return "zstd";
  }
  return "unknown";
}

Status EncodePartition(const RowBlockView& rows, const PartitionEncodeOptions& options,
                       std::string* out) {
  if (rows.rows() > UINT32_MAX - 1 || rows.nnz() > UINT32_MAX) {
    return Status::InvalidArgument("partition too large: " + std::to_string(rows.rows()) +
                                   " rows, " + std::to_string(rows.nnz()) + " nnz");
  }
  Header h;
  h.codec = static_cast<uint8_t>(options.codec);
  h.flags = rows.binary() ? 0 : kFlagValues;
  h.rows = static_cast<uint32_t>(rows.rows());
  h.nnz = static_cast<uint32_t>(rows.nnz());
  h.raw_size = RawSize(h.rows, h.nnz, !rows.binary());
  out->resize(kPartitionHeaderSize);
  if (options.codec == Codec::kNone) {
    AppendRawPayload(rows, out);
  } else {
    thread_local std::string raw;  // encode runs per partition; keep its scratch
    raw.clear();
    AppendRawPayload(rows, &raw);
    VIRGA_RETURN_IF_ERROR(Compress(options.codec, options.zstd_level, raw, out));
    const double stored = static_cast<double>(out->size() - kPartitionHeaderSize);
    if (options.min_saving > 0 &&
        stored > static_cast<double>(raw.size()) * (1 - options.min_saving)) {
      h.codec = static_cast<uint8_t>(Codec::kNone);
      out->resize(kPartitionHeaderSize);
      out->append(raw);
    }
  }
  h.stored_size = out->size() - kPartitionHeaderSize;
  PutHeader(h, out->data());
  h.checksum = Checksum(out->data(), out->data() + kPartitionHeaderSize, h.stored_size);
  PutLE<uint64_t>(out->data() + kChecksumOffset, h.checksum);
  return Status::OK();
}

RowBlockView PartitionBuffer::view() const {
  static constexpr uint32_t kNoRowsOffsets[1] = {0};
  if (rows_ == 0) return RowBlockView{{}, kNoRowsOffsets, {}, {}};
  std::byte* p = storage_.get();
  const auto* labels = std::launder(reinterpret_cast<const float*>(p));
  const auto* offsets = std::launder(reinterpret_cast<const uint32_t*>(p + 4 * size_t{rows_}));
  const uint32_t* indices = offsets + rows_ + 1;
  const float* values =
      has_values_ ? std::launder(reinterpret_cast<const float*>(indices + nnz_)) : nullptr;
  return RowBlockView{{labels, rows_},
                      {offsets, size_t{rows_} + 1},
                      {indices, nnz_},
                      {values, has_values_ ? nnz_ : 0}};
}

std::byte* PartitionBuffer::Reserve(size_t bytes) {
  if (bytes > capacity_) {
    capacity_ = std::max(bytes, capacity_ + capacity_ / 2);
    storage_.reset();  // free first: peak memory stays one block
    storage_ = std::make_unique_for_overwrite<std::byte[]>(capacity_);
  }
  return storage_.get();
}

Status DecodePartition(std::string_view bytes, std::string_view key, PartitionBuffer* out) {
  out->rows_ = 0;  // empty until every check has passed
  if (bytes.size() < kPartitionHeaderSize) {
    return Corrupt(key, "truncated: " + std::to_string(bytes.size()) +
                            " bytes, a partition header needs " +
                            std::to_string(kPartitionHeaderSize));
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) return Corrupt(key, "bad magic (not a partition)");
  const Header h = ParseHeader(bytes.data());
  VIRGA_RETURN_IF_ERROR(CheckHeader(bytes, h, key));

  // raw_size <= 16 * 2^32 (checked against rows and nnz), so it fits size_t.
  std::byte* dst = out->Reserve(h.raw_size);
  std::string_view stored = bytes.substr(kPartitionHeaderSize);
  if (h.codec == static_cast<uint8_t>(Codec::kNone)) {
    std::memcpy(dst, stored.data(), h.raw_size);
  } else {
    VIRGA_RETURN_IF_ERROR(Decompress(h, stored, reinterpret_cast<char*>(dst), key));
  }
  const auto* offsets = std::launder(reinterpret_cast<const uint32_t*>(dst + 4 * size_t{h.rows}));
  VIRGA_RETURN_IF_ERROR(CheckOffsets({offsets, size_t{h.rows} + 1}, h.nnz, key));
  out->rows_ = h.rows;
  out->nnz_ = h.nnz;
  out->has_values_ = h.flags & kFlagValues;
  return Status::OK();
}

}  // namespace virga
