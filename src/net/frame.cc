#include "net/frame.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace virga::net {

static_assert(std::endian::native == std::endian::little,
              "wire v1 is little-endian and encoded with memcpy: port EncodeHeader first");

namespace {

// Field offsets in the 24-byte header (docs/wire-format.md).
constexpr size_t kOffMagic = 0, kOffVersion = 4, kOffOpcode = 5, kOffFlags = 6, kOffStatus = 8,
                 kOffRequestId = 12, kOffPayloadLen = 20;
constexpr uint16_t kKnownFlags = kFlagReply;
constexpr uint32_t kMaxStatusCode = static_cast<uint32_t>(Status::Code::kInternal);
constexpr size_t kMinRead = 4096;  // compact rather than read into less free space than this

template <typename T>
void Put(std::byte* out, size_t off, T v) {
  std::memcpy(out + off, &v, sizeof(T));
}

template <typename T>
T Get(const std::byte* in, size_t off) {
  T v;
  std::memcpy(&v, in + off, sizeof(T));
  return v;
}

size_t RoundUp8(size_t n) { return (n + 7) & ~size_t{7}; }

}  // namespace

void EncodeHeader(const FrameHeader& h, std::byte* out) {
  Put<uint32_t>(out, kOffMagic, kMagic);
  Put<uint8_t>(out, kOffVersion, kVersion);
  Put<uint8_t>(out, kOffOpcode, h.opcode);
  Put<uint16_t>(out, kOffFlags, h.flags);
  Put<uint32_t>(out, kOffStatus, h.status);
  Put<uint64_t>(out, kOffRequestId, h.request_id);
  Put<uint32_t>(out, kOffPayloadLen, h.payload_len);
}

Status DecodeHeader(const std::byte* in, uint32_t max_payload, FrameHeader* out) {
  const auto magic = Get<uint32_t>(in, kOffMagic);
  if (magic != kMagic)
    return Status::Corruption(fmt::format("bad magic 0x{:08x}: not a virga frame", magic));
  const auto version = Get<uint8_t>(in, kOffVersion);
  if (version != kVersion)
    return Status::Corruption(
        fmt::format("unsupported wire version {} (this peer speaks {})", version, kVersion));
  FrameHeader h;
  h.opcode = Get<uint8_t>(in, kOffOpcode);
  h.flags = Get<uint16_t>(in, kOffFlags);
  h.status = Get<uint32_t>(in, kOffStatus);
  h.request_id = Get<uint64_t>(in, kOffRequestId);
  h.payload_len = Get<uint32_t>(in, kOffPayloadLen);
  if (h.flags & kFlagCompressed)
    return Status::Corruption("flag COMPRESSED is not supported in wire version 1");
  if (h.flags & ~kKnownFlags)
    return Status::Corruption(fmt::format("unknown flags 0x{:04x}", h.flags & ~kKnownFlags));
  if (h.status > kMaxStatusCode)
    return Status::Corruption(fmt::format("unknown status code {}", h.status));
  if (h.payload_len > max_payload)
    return Status::ResourceExhausted(
        fmt::format("payload of {} bytes over the cap of {}", h.payload_len, max_payload));
  *out = h;
  return Status::OK();
}

Status PayloadReader::Str(std::string_view* s, uint32_t max_len) {
  uint32_t n = 0;
  VIRGA_RETURN_IF_ERROR(Raw(&n, 4, "string length"));
  if (n > max_len)
    return Status::InvalidArgument(
        fmt::format("string of {} bytes at offset {} over the cap of {}", n, pos_ - 4, max_len));
  if (remaining() < n) return Truncated("string");
  *s = std::string_view(reinterpret_cast<const char*>(p_.data() + pos_), n);
  pos_ += n;
  return Status::OK();
}

Status PayloadReader::ExpectEnd() const {
  if (remaining() == 0) return Status::OK();
  return Status::InvalidArgument(
      fmt::format("{} unexpected bytes after the payload's last field", remaining()));
}

Status PayloadReader::Truncated(const char* what) const {
  return Status::InvalidArgument(
      fmt::format("truncated {} at offset {} of a {}-byte payload", what, pos_, p_.size()));
}

Status PayloadReader::ArrayError(std::string what) const {
  return Status::InvalidArgument(fmt::format("{} at offset {}", what, pos_ - 4));
}

FrameAssembler::FrameAssembler(uint32_t max_payload, size_t initial_capacity)
    : max_payload_(max_payload) {
  MoveTo(RoundUp8(std::max(initial_capacity, kMinRead)));
}

void FrameAssembler::MoveTo(size_t new_cap) {
  auto mem = std::make_unique_for_overwrite<uint64_t[]>(new_cap / 8);
  if (end_ > start_)
    std::memcpy(mem.get(), reinterpret_cast<std::byte*>(mem_.get()) + start_, end_ - start_);
  end_ -= start_;
  start_ = 0;
  mem_ = std::move(mem);
  cap_ = new_cap;
}

std::span<std::byte> FrameAssembler::WritableSpan() {
  auto* base = reinterpret_cast<std::byte*>(mem_.get());
  if (start_ == end_) start_ = end_ = 0;
  if (need_ > cap_) {
    const size_t limit = RoundUp8(kHeaderSize + size_t{max_payload_});
    MoveTo(RoundUp8(std::max(need_, std::min(2 * cap_, limit))));
    base = reinterpret_cast<std::byte*>(mem_.get());
  } else if (start_ > 0 && (start_ + need_ > cap_ || cap_ - end_ < kMinRead)) {
    std::memmove(base, base + start_, end_ - start_);  // start 0 keeps payloads aligned
    end_ -= start_;
    start_ = 0;
  }
  return {base + end_, cap_ - end_};
}

Status FrameAssembler::Next(FrameHeader* h, std::span<const std::byte>* payload, bool* ready) {
  *ready = false;
  if (end_ - start_ < kHeaderSize) return Status::OK();
  auto* base = reinterpret_cast<std::byte*>(mem_.get());
  VIRGA_RETURN_IF_ERROR(DecodeHeader(base + start_, max_payload_, h));
  const size_t len = kHeaderSize + h->payload_len;
  need_ = len;
  if (end_ - start_ < len) return Status::OK();
  // The header is 24 bytes, so the payload is aligned iff the frame is. The
  // bytes below start_ are consumed: slide this frame down over them.
  size_t at = start_;
  if (const size_t k = at % 8; k != 0) {
    std::memmove(base + at - k, base + at, len);
    at -= k;
  }
  *payload = std::span<const std::byte>(base + at + kHeaderSize, h->payload_len);
  start_ += len;
  need_ = kHeaderSize;
  *ready = true;
  return Status::OK();
}

}  // namespace virga::net
