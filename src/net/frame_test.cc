#include "net/frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace virga::net {
namespace {

using Header = std::array<std::byte, kHeaderSize>;

Header Encode(const FrameHeader& h) {
  Header out;
  EncodeHeader(h, out.data());
  return out;
}

template <typename T>
void Poke(Header* h, size_t off, T v) {
  std::memcpy(h->data() + off, &v, sizeof(T));
}

// A payload copied into 8-byte aligned storage, as receive buffers hold it.
struct Aligned {
  explicit Aligned(const std::string& s) : words((s.size() + 7) / 8 + 1) {
    std::memcpy(words.data(), s.data(), s.size());
    bytes = std::span<const std::byte>(reinterpret_cast<const std::byte*>(words.data()), s.size());
  }
  std::vector<uint64_t> words;
  std::span<const std::byte> bytes;
};

TEST(FrameHeader, RoundTrip) {
  FrameHeader h{.opcode = 7,
                .flags = kFlagReply,
                .status = 11,
                .request_id = 0x0123456789abcdefULL,
                .payload_len = 6144};
  Header raw = Encode(h);
  EXPECT_EQ(std::memcmp(raw.data(), "VGPS", 4), 0);  // magic reads as ASCII on the wire
  FrameHeader d;
  ASSERT_TRUE(DecodeHeader(raw.data(), 6144, &d).ok());
  EXPECT_EQ(d.opcode, 7);
  EXPECT_EQ(d.flags, kFlagReply);
  EXPECT_EQ(d.status, 11u);
  EXPECT_EQ(d.request_id, 0x0123456789abcdefULL);
  EXPECT_EQ(d.payload_len, 6144u);
}

void ExpectRejected(const Header& raw, uint32_t cap, Status::Code code, const std::string& reason) {
  FrameHeader d;
  Status s = DecodeHeader(raw.data(), cap, &d);
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find(reason), std::string::npos) << s.ToString();
}

TEST(FrameHeader, Rejections) {
  const Header good = Encode(FrameHeader{.opcode = 3, .payload_len = 100});
  Header h = good;
  Poke<uint32_t>(&h, 0, 0x50545448);  // "HTTP"
  ExpectRejected(h, 1000, Status::Code::kCorruption, "bad magic 0x50545448");
  h = good;
  Poke<uint8_t>(&h, 4, 2);
  ExpectRejected(h, 1000, Status::Code::kCorruption, "unsupported wire version 2");
  h = good;
  Poke<uint16_t>(&h, 6, 0x8001);
  ExpectRejected(h, 1000, Status::Code::kCorruption, "unknown flags 0x8000");
  h = good;
  Poke<uint16_t>(&h, 6, kFlagCompressed);
  ExpectRejected(h, 1000, Status::Code::kCorruption, "COMPRESSED");
  h = good;
  Poke<uint32_t>(&h, 8, 13);
  ExpectRejected(h, 1000, Status::Code::kCorruption, "unknown status code 13");
  ExpectRejected(good, 99, Status::Code::kResourceExhausted,
                 "payload of 100 bytes over the cap of 99");
  FrameHeader d;
  EXPECT_TRUE(DecodeHeader(good.data(), 100, &d).ok());  // the cap is inclusive
}

TEST(Payload, RoundTripMixedAlignment) {
  std::string buf;
  PayloadWriter w(&buf);
  const std::vector<uint64_t> keys = {1, 1ULL << 40, 42};
  const std::vector<float> vals = {0.5f, -2.0f};
  w.U8(9);
  w.Str("abc");
  w.Array<uint64_t>(keys);  // padded to 8 after the count
  w.F32(1.25f);
  w.Array<float>(vals);
  w.U64(77);
  Aligned a(buf);
  PayloadReader r(a.bytes);
  uint8_t u8;
  std::string_view s;
  std::span<const uint64_t> k;
  float f;
  std::span<const float> v;
  uint64_t u64;
  ASSERT_TRUE(r.U8(&u8).ok());
  ASSERT_TRUE(r.Str(&s, 10).ok());
  ASSERT_TRUE(r.Array(&k, 10).ok());
  ASSERT_TRUE(r.F32(&f).ok());
  ASSERT_TRUE(r.Array(&v, 10).ok());
  ASSERT_TRUE(r.U64(&u64).ok());
  EXPECT_TRUE(r.ExpectEnd().ok());
  EXPECT_EQ(u8, 9);
  EXPECT_EQ(s, "abc");
  EXPECT_EQ(std::vector<uint64_t>(k.begin(), k.end()), keys);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(k.data()) % 8, 0u);  // viewed in place
  EXPECT_EQ(f, 1.25f);
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), vals);
  EXPECT_EQ(u64, 77u);
}

TEST(Payload, StringBounds) {
  std::string buf;
  PayloadWriter(&buf).Str("hello");
  std::string_view s;
  {
    Aligned a(buf.substr(0, 6));  // length says 5, 2 bytes follow
    Status st = PayloadReader(a.bytes).Str(&s, 100);
    EXPECT_TRUE(st.IsInvalidArgument());
    EXPECT_NE(st.message().find("truncated string"), std::string::npos) << st.ToString();
  }
  {
    Aligned a(buf);
    Status st = PayloadReader(a.bytes).Str(&s, 4);
    EXPECT_NE(st.message().find("string of 5 bytes at offset 0 over the cap of 4"),
              std::string::npos)
        << st.ToString();
  }
  Aligned a(buf.substr(0, 3));  // not even the length
  EXPECT_NE(PayloadReader(a.bytes).Str(&s, 100).message().find("truncated string length"),
            std::string::npos);
  Aligned huge(std::string("\xff\xff\xff\xff", 4));  // claims 4 GiB
  EXPECT_TRUE(PayloadReader(huge.bytes).Str(&s, UINT32_MAX).IsInvalidArgument());
}

TEST(Payload, ArrayBounds) {
  std::string buf;
  const std::vector<uint64_t> keys = {1, 2, 3};
  PayloadWriter(&buf).Array<uint64_t>(keys);  // 4 count + 4 pad + 24
  ASSERT_EQ(buf.size(), 32u);
  std::span<const uint64_t> k;
  {
    Aligned a(buf.substr(0, 31));
    Status st = PayloadReader(a.bytes).Array(&k, 10);
    EXPECT_NE(st.message().find("truncated array of 3 elements"), std::string::npos)
        << st.ToString();
  }
  {
    Aligned a(buf.substr(0, 6));  // the padding itself is cut
    EXPECT_TRUE(PayloadReader(a.bytes).Array(&k, 10).IsInvalidArgument());
  }
  {
    Aligned a(buf);
    Status st = PayloadReader(a.bytes).Array(&k, 2);
    EXPECT_NE(st.message().find("array of 3 elements over the cap"), std::string::npos);
  }
  // A count near 2^32 must not overflow the size check.
  Aligned huge(std::string("\xff\xff\xff\xff\0\0\0\0", 8) + std::string(16, 'x'));
  EXPECT_TRUE(PayloadReader(huge.bytes).Array(&k, UINT32_MAX).IsInvalidArgument());
  std::span<const float> f;
  EXPECT_TRUE(PayloadReader(huge.bytes).Array(&f, UINT32_MAX).IsInvalidArgument());
}

TEST(Payload, MisalignedBufferIsAnErrorNotAMisalignedRead) {
  std::string buf;
  const std::vector<uint64_t> keys = {5};
  PayloadWriter(&buf).Array<uint64_t>(keys);
  std::vector<uint64_t> words(8);
  auto* base = reinterpret_cast<std::byte*>(words.data()) + 4;  // 4 mod 8
  std::memcpy(base, buf.data(), buf.size());
  std::span<const uint64_t> k;
  Status st = PayloadReader(std::span<const std::byte>(base, buf.size())).Array(&k, 10);
  EXPECT_NE(st.message().find("not aligned"), std::string::npos) << st.ToString();
}

TEST(Payload, ExpectEndAndScalarTruncation) {
  Aligned a(std::string("\x01\x02\x03", 3));
  PayloadReader r(a.bytes);
  uint8_t u8;
  uint32_t u32;
  ASSERT_TRUE(r.U8(&u8).ok());
  EXPECT_NE(r.ExpectEnd().message().find("2 unexpected bytes"), std::string::npos);
  Status st = r.U32(&u32);
  EXPECT_NE(st.message().find("truncated u32 at offset 1 of a 3-byte payload"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(r.remaining(), 2u);  // a failed read consumes nothing
}

// Feeds `stream` in chunks of `chunk` bytes; returns the payloads in order.
std::vector<std::string> Assemble(const std::string& stream, size_t chunk, FrameAssembler* in,
                                  Status* error) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    FrameHeader h;
    std::span<const std::byte> p;
    bool ready;
    *error = in->Next(&h, &p, &ready);
    if (!error->ok()) return out;
    if (ready) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data()) % 8, 0u) << "payload " << out.size();
      EXPECT_EQ(h.request_id, out.size());
      out.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
      continue;
    }
    if (pos == stream.size()) return out;
    std::span<std::byte> space = in->WritableSpan();
    const size_t n = std::min({chunk, space.size(), stream.size() - pos});
    std::memcpy(space.data(), stream.data() + pos, n);
    in->Commit(n);
    pos += n;
  }
}

std::string Frames(const std::vector<std::string>& payloads) {
  std::string stream;
  for (size_t i = 0; i < payloads.size(); ++i) {
    Header raw = Encode(FrameHeader{
        .opcode = 1, .request_id = i, .payload_len = static_cast<uint32_t>(payloads[i].size())});
    stream.append(reinterpret_cast<const char*>(raw.data()), raw.size());
    stream += payloads[i];
  }
  return stream;
}

TEST(FrameAssembler, AlignsPayloadsWhateverTheChunking) {
  std::vector<std::string> payloads;
  for (size_t len : {5, 13, 0, 6144, 1, 7, 70000, 3}) {
    std::string p(len, '\0');
    for (size_t i = 0; i < len; ++i) p[i] = static_cast<char>('a' + (i * 7 + len) % 26);
    payloads.push_back(p);
  }
  const std::string stream = Frames(payloads);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{24}, size_t{4096}, stream.size()}) {
    FrameAssembler in(1 << 20, 4096);
    Status error;
    EXPECT_EQ(Assemble(stream, chunk, &in, &error), payloads) << "chunk " << chunk;
    EXPECT_TRUE(error.ok()) << error.ToString();
    EXPECT_FALSE(in.HasPartialFrame());
    EXPECT_GE(in.capacity(), 70000u + kHeaderSize);  // grew for the big frame
  }
}

TEST(FrameAssembler, BadHeaderAndOversizedFrameAreErrors) {
  FrameAssembler in(100, 4096);
  Status error;
  Assemble(std::string(24, 'x'), 24, &in, &error);
  EXPECT_NE(error.message().find("bad magic"), std::string::npos) << error.ToString();
  FrameAssembler small(100, 4096);
  const auto out = Assemble(Frames({"ok", std::string(101, 'y')}), 4096, &small, &error);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(error.code(), Status::Code::kResourceExhausted) << error.ToString();
}

}  // namespace
}  // namespace virga::net
