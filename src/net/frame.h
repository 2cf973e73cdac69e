// Wire protocol v1 framing (docs/wire-format.md): every message is a 24-byte
// little-endian header followed by `payload_len` bytes of payload.
//
//   offset size field
//        0    4 magic       "VGPS" (0x53504756 read as little-endian u32)
//        4    1 version     1
//        5    1 opcode      service-defined (0 = HELLO, the authentication frame)
//        6    2 flags       bit 0 REPLY; bit 1 COMPRESSED is reserved (v1 rejects it)
//        8    4 status      replies: Status::Code of the outcome; requests: 0
//       12    8 request_id  chosen by the client, echoed in the reply
//       20    4 payload_len bytes after the header, <= the receiver's cap
//
// Payloads are built with PayloadWriter and read with PayloadReader: scalars,
// length-prefixed strings, and packed arrays (u32 count, then padding to the
// element's alignment, then the elements), so a receiver can view arrays in
// place without copying. Every read is bounds-checked; a malformed payload is
// an error, never an out-of-bounds read.
//
// The byte order is the host's; virga only runs on little-endian hosts
// (checked at compile time in frame.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga::net {

inline constexpr uint32_t kMagic = 0x53504756;  // "VGPS"
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 24;
inline constexpr uint16_t kFlagReply = 1;
inline constexpr uint16_t kFlagCompressed = 2;  // reserved for a later version
inline constexpr uint8_t kOpHello = 0;
inline constexpr uint32_t kMaxTokenLen = 4096;  // HELLO token cap

struct FrameHeader {
  uint8_t opcode = 0;
  uint16_t flags = 0;
  uint32_t status = 0;  // a Status::Code; 0 (OK) in requests
  uint64_t request_id = 0;
  uint32_t payload_len = 0;
};

void EncodeHeader(const FrameHeader& h, std::byte* out /* kHeaderSize bytes */);
// Checks magic, version, flags (only REPLY is known in v1), the status code
// (a known Status::Code) and payload_len <= max_payload. The error is
// Corruption (ResourceExhausted for an oversized payload) naming the field.
Status DecodeHeader(const std::byte* in /* kHeaderSize bytes */, uint32_t max_payload,
                    FrameHeader* out);

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Appends to a caller-owned buffer (reused across messages: the constructor
// clears it but keeps its capacity). The buffer holds exactly one payload, so
// array padding is computed relative to its start.
class PayloadWriter {
 public:
  explicit PayloadWriter(std::string* buf) : buf_(buf) { buf_->clear(); }
  void U8(uint8_t v) { Raw(&v, 1); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F32(float v) { Raw(&v, 4); }
  // REQUIRES: s.size() < 2^32.
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    Raw(s.data(), s.size());
  }
  // REQUIRES: a.size() < 2^32.
  template <typename T>
  void Array(std::span<const T> a) {
    U32(static_cast<uint32_t>(a.size()));
    Pad(alignof(T));
    Raw(a.data(), a.size_bytes());
  }
  size_t size() const { return buf_->size(); }

 private:
  void Raw(const void* p, size_t n) { buf_->append(static_cast<const char*>(p), n); }
  void Pad(size_t align) { buf_->append((align - buf_->size() % align) % align, '\0'); }
  std::string* buf_;
};

// Reads a payload in place. Receive buffers (FrameAssembler) put payloads at
// 8-byte aligned addresses; Array() fails cleanly (never reads misaligned)
// when handed a payload that is not. Errors are InvalidArgument naming the
// field that failed.
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const std::byte> p) : p_(p) {}
  Status U8(uint8_t* v) { return Raw(v, 1, "u8"); }
  Status U32(uint32_t* v) { return Raw(v, 4, "u32"); }
  Status U64(uint64_t* v) { return Raw(v, 8, "u64"); }
  Status F32(float* v) { return Raw(v, 4, "f32"); }
  // Views the string in place (valid as long as the payload); size <= max_len.
  Status Str(std::string_view* s, uint32_t max_len);
  // Views `count` elements in place; count <= max_count.
  template <typename T>
  Status Array(std::span<const T>* a, uint32_t max_count) {
    uint32_t n = 0;
    VIRGA_RETURN_IF_ERROR(U32(&n));
    if (n > max_count)
      return ArrayError("array of " + std::to_string(n) + " elements over the cap");
    const size_t pad = (alignof(T) - pos_ % alignof(T)) % alignof(T);
    if (p_.size() - pos_ < pad || (p_.size() - pos_ - pad) / sizeof(T) < n)
      return ArrayError("truncated array of " + std::to_string(n) + " elements");
    const std::byte* start = p_.data() + pos_ + pad;
    if (reinterpret_cast<uintptr_t>(start) % alignof(T) != 0)
      return ArrayError("payload buffer not aligned");
    pos_ += pad + size_t{n} * sizeof(T);
    *a = std::span<const T>(reinterpret_cast<const T*>(start), n);
    return Status::OK();
  }
  size_t remaining() const { return p_.size() - pos_; }
  // InvalidArgument if bytes are left over (a payload must be consumed exactly).
  Status ExpectEnd() const;

 private:
  Status Raw(void* v, size_t n, const char* what) {
    if (p_.size() - pos_ < n) return Truncated(what);
    std::memcpy(v, p_.data() + pos_, n);
    pos_ += n;
    return Status::OK();
  }
  Status Truncated(const char* what) const;
  Status ArrayError(std::string what) const;
  std::span<const std::byte> p_;
  size_t pos_ = 0;
};

// Cuts a byte stream into frames. Bytes are read into WritableSpan() and
// committed; Next() then yields complete frames in order, with each payload
// at an 8-byte aligned address (moving buffered bytes when a frame would
// land misaligned). One buffer is reused for the life of the stream; it
// grows to the largest frame seen. Not thread-safe.
class FrameAssembler {
 public:
  explicit FrameAssembler(uint32_t max_payload, size_t initial_capacity = 64 << 10);

  // Free space after the buffered bytes, large enough for the frame being
  // assembled (compacts or grows). Invalidates payloads returned by Next().
  std::span<std::byte> WritableSpan();
  // Marks n bytes of WritableSpan() as filled. REQUIRES: n <= its size.
  void Commit(size_t n) { end_ += n; }

  // Sets *ready and fills *h and *payload when a whole frame is buffered;
  // *ready = false means more bytes are needed. A bad header is an error
  // (the stream cannot be resynchronized). The payload stays valid until the
  // next Next() or WritableSpan(). A misaligned frame is moved down by up to
  // 7 bytes over consumed space (a copy of that frame only, and only when
  // pipelined payload lengths are not multiples of 8).
  Status Next(FrameHeader* h, std::span<const std::byte>* payload, bool* ready);

  // Drops everything buffered (a new stream begins); keeps the buffer.
  void Reset() {
    start_ = end_ = 0;
    need_ = kHeaderSize;
  }
  // True when bytes of an incomplete frame are buffered.
  bool HasPartialFrame() const { return end_ > start_; }
  size_t capacity() const { return cap_; }

 private:
  void MoveTo(size_t new_cap);  // copies buffered bytes to offset 0 of a buffer of new_cap
  const uint32_t max_payload_;
  std::unique_ptr<uint64_t[]> mem_;  // uint64_t: 8-byte aligned storage
  size_t cap_ = 0;                   // bytes
  size_t start_ = 0, end_ = 0;       // buffered, unconsumed bytes: [start_, end_)
  size_t need_ = kHeaderSize;        // bytes of the frame at start_, once its header is known
};

}  // namespace virga::net
