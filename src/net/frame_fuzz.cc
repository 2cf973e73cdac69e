// libFuzzer target (scripts/fuzz.sh): arbitrary bytes as a frame stream.
// Input layout: byte 0 picks the chunk size used to feed the FrameAssembler;
// the rest is the stream. Every complete frame's payload is walked with
// PayloadReader, driven by its own bytes: each step reads a u8 that picks
// the next field (u8, u32, u64, f32, string, u64 array, f32 array).
// Invariants checked: no crash, no out-of-bounds or misaligned read
// (ASan/UBSan), payloads aligned, readers never over-consume.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "net/frame.h"

using namespace virga::net;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

volatile uint64_t sink;  // keeps the element reads from being optimized away

void WalkPayload(std::span<const std::byte> payload) {
  PayloadReader r(payload);
  for (int steps = 0; steps < 64; ++steps) {
    uint8_t op;
    if (!r.U8(&op).ok()) break;
    const size_t before = r.remaining();
    virga::Status s;
    uint32_t u32;
    uint64_t u64;
    float f;
    std::string_view str;
    std::span<const uint64_t> keys;
    std::span<const float> vals;
    switch (op % 7) {
      case 0:
        s = r.U8(&op);
        break;
      case 1:
        s = r.U32(&u32);
        break;
      case 2:
        s = r.U64(&u64);
        break;
      case 3:
        s = r.F32(&f);
        break;
      case 4:
        s = r.Str(&str, 1 << 16);
        if (s.ok()) Check(str.size() <= before);
        break;
      case 5:
        s = r.Array(&keys, 1 << 20);
        if (s.ok()) {
          Check(reinterpret_cast<uintptr_t>(keys.data()) % 8 == 0);
          uint64_t sum = 0;
          for (uint64_t k : keys) sum += k;  // touch every element
          sink = sum;
        }
        break;
      default:
        s = r.Array(&vals, 1 << 20);
        if (s.ok())
          for (float v : vals) sink = static_cast<uint64_t>(v != 0);
        break;
    }
    Check(r.remaining() <= before);
    if (!s.ok()) Check(r.remaining() == before || op % 7 >= 4);  // scalars fail atomically
    if (!s.ok()) break;
  }
  (void)r.ExpectEnd();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const auto* stream = reinterpret_cast<const std::byte*>(data + 1);
  const size_t len = size - 1;

  // The header decoder on its own, at the start of the stream.
  if (len >= kHeaderSize) {
    FrameHeader h;
    if (DecodeHeader(stream, 1 << 16, &h).ok()) {
      std::byte again[kHeaderSize];
      EncodeHeader(h, again);
      Check(std::memcmp(again, stream, kHeaderSize) == 0);  // decode is exact
    }
  }

  FrameAssembler in(1 << 16, 4096);
  size_t pos = 0;
  for (;;) {
    FrameHeader h;
    std::span<const std::byte> payload;
    bool ready;
    if (!in.Next(&h, &payload, &ready).ok()) break;
    if (ready) {
      Check(reinterpret_cast<uintptr_t>(payload.data()) % 8 == 0);
      Check(payload.size() == h.payload_len);
      WalkPayload(payload);
      continue;
    }
    if (pos == len) break;
    std::span<std::byte> space = in.WritableSpan();
    Check(!space.empty());
    const size_t n = std::min({chunk, space.size(), len - pos});
    std::memcpy(space.data(), stream + pos, n);
    in.Commit(n);
    pos += n;
  }
  return 0;
}
