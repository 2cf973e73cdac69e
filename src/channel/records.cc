#include "channel/records.h"

#include <bit>
#include <cstring>

#include "common/coding.h"

namespace virga::channel {
namespace {

static_assert(std::endian::native == std::endian::little, "records store floats as raw little-endian");

constexpr uint32_t kModelMagic = 0x314D4356;   // "VCM1"
constexpr uint32_t kStateMagic = 0x31534356;   // "VCS1"
constexpr uint32_t kGradMagic = 0x31474356;    // "VCG1"
constexpr uint32_t kCursorMagic = 0x31434356;  // "VCC1"

using coding::PutU32;
using coding::PutU64;

void PutF64(std::string* out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }
template <typename T>
void PutArray(std::string* out, std::span<const T> a) {
  if (a.empty()) return;
  out->append(reinterpret_cast<const char*>(a.data()), a.size_bytes());
}
void Seal(std::string* out) { PutU64(out, XXH3_64bits(out->data(), out->size())); }

Status Bad(std::string_view key, std::string_view why) {
  return Status::Corruption(std::string(key) + ": " + std::string(why));
}

// Checks the trailer and magic; *r reads the body after the magic.
Status Open(std::string_view bytes, std::string_view key, uint32_t magic, coding::Reader* r) {
  std::string_view body;
  if (bytes.size() < 12 || !coding::VerifyChecksumTrailer(bytes, &body)) return Bad(key, "checksum mismatch");
  *r = coding::Reader(body);
  uint32_t m = 0;
  r->U32(&m);
  if (m != magic) return Bad(key, "wrong magic (not a channel record of this kind)");
  return Status::OK();
}

template <typename T>
bool ReadArray(coding::Reader* r, uint64_t n, T* dst) {
  if (n == 0) return true;
  std::string_view v;
  if (n > r->remaining() / sizeof(T) || !r->Bytes(n * sizeof(T), &v)) return false;
  std::memcpy(dst, v.data(), v.size());
  return true;
}

}  // namespace

Layout::Layout(std::string_view job, uint64_t dim, uint32_t chunks)
    : prefix_("channel/" + std::string(job) + "/"), dim_(dim), chunks_(chunks == 0 ? 1 : chunks) {}

uint32_t Layout::ChunkOf(uint64_t i) const {
  uint32_t c = static_cast<uint32_t>((i * chunks_) / dim_);
  while (c + 1 < chunks_ && ChunkBegin(c + 1) <= i) ++c;
  while (c > 0 && ChunkBegin(c) > i) --c;
  return c;
}

std::string Layout::Model(uint64_t round, uint32_t chunk) const {
  return prefix_ + "model/" + std::to_string(round) + "/" + std::to_string(chunk);
}
std::string Layout::State(uint64_t round, uint32_t chunk) const {
  return prefix_ + "state/" + std::to_string(round) + "/" + std::to_string(chunk);
}
std::string Layout::Grad(uint64_t round, uint32_t chunk, uint32_t slot) const {
  return prefix_ + "grad/" + std::to_string(round) + "/" + std::to_string(chunk) + "/" +
         std::to_string(slot);
}
std::string Layout::Cursor(uint32_t slot) const { return prefix_ + "cursor/" + std::to_string(slot); }

void EncodeModelChunk(const ModelChunkHeader& h, std::span<const float> weights, std::string* out) {
  out->clear();
  PutU32(out, kModelMagic);
  PutU64(out, h.round);
  PutU32(out, h.chunk);
  PutU64(out, h.begin);
  PutU64(out, weights.size());
  PutU32(out, static_cast<uint32_t>(h.included.size()));
  for (const Inclusion& i : h.included) {
    PutU32(out, i.slot);
    PutU32(out, i.pos);
  }
  PutArray(out, weights);
  Seal(out);
}

Status DecodeModelChunk(std::string_view bytes, std::string_view key, ModelChunkHeader* h,
                        std::span<float> dense) {
  coding::Reader r("");
  VIRGA_RETURN_IF_ERROR(Open(bytes, key, kModelMagic, &r));
  uint64_t round = 0, begin = 0, size = 0;
  uint32_t chunk = 0, n = 0;
  if (!r.U64(&round) || !r.U32(&chunk) || !r.U64(&begin) || !r.U64(&size) || !r.U32(&n)) {
    return Bad(key, "truncated header");
  }
  if (round != h->round || chunk != h->chunk || begin != h->begin || size != h->size) {
    return Bad(key, "holds round " + std::to_string(round) + " chunk " + std::to_string(chunk) + " [" +
                        std::to_string(begin) + ", +" + std::to_string(size) + "), expected round " +
                        std::to_string(h->round) + " chunk " + std::to_string(h->chunk) + " [" +
                        std::to_string(h->begin) + ", +" + std::to_string(h->size) + ")");
  }
  if (begin + size > dense.size()) return Bad(key, "chunk runs past the model's dimension");
  if (n > r.remaining() / 8) return Bad(key, "truncated inclusion list");
  h->included.resize(n);
  for (Inclusion& i : h->included) {
    r.U32(&i.slot);
    r.U32(&i.pos);
  }
  if (r.remaining() != size * sizeof(float)) return Bad(key, "weight count does not match its size");
  ReadArray(&r, size, dense.data() + begin);
  return Status::OK();
}

void EncodeStateChunk(uint64_t round, uint32_t chunk, std::span<const float> state, std::string* out) {
  out->clear();
  PutU32(out, kStateMagic);
  PutU64(out, round);
  PutU32(out, chunk);
  PutU64(out, state.size());
  PutArray(out, state);
  Seal(out);
}

Status DecodeStateChunk(std::string_view bytes, std::string_view key, uint64_t round, uint32_t chunk,
                        std::span<float> state) {
  coding::Reader r("");
  VIRGA_RETURN_IF_ERROR(Open(bytes, key, kStateMagic, &r));
  uint64_t got_round = 0, n = 0;
  uint32_t got_chunk = 0;
  if (!r.U64(&got_round) || !r.U32(&got_chunk) || !r.U64(&n)) return Bad(key, "truncated header");
  if (got_round != round || got_chunk != chunk) {
    return Bad(key, "holds round " + std::to_string(got_round) + " chunk " + std::to_string(got_chunk));
  }
  if (n != state.size() || r.remaining() != n * sizeof(float)) {
    return Bad(key, "holds " + std::to_string(n) + " state floats, expected " + std::to_string(state.size()));
  }
  ReadArray(&r, n, state.data());
  return Status::OK();
}

void EncodeGrad(const GradHeader& h, std::span<const uint32_t> index, std::span<const float> value,
                std::string* out) {
  out->clear();
  PutU32(out, kGradMagic);
  PutU64(out, h.round);
  PutU32(out, h.chunk);
  PutU32(out, h.slot);
  PutU32(out, h.pos);
  PutU32(out, h.rows);
  PutF64(out, h.loss);
  PutU64(out, index.size());
  PutArray(out, index);
  PutArray(out, value.first(index.size()));
  Seal(out);
}

Status DecodeGrad(std::string_view bytes, std::string_view key, GradHeader* h,
                  std::vector<uint32_t>* index, std::vector<float>* value) {
  coding::Reader r("");
  VIRGA_RETURN_IF_ERROR(Open(bytes, key, kGradMagic, &r));
  uint64_t loss_bits = 0, n = 0;
  if (!r.U64(&h->round) || !r.U32(&h->chunk) || !r.U32(&h->slot) || !r.U32(&h->pos) ||
      !r.U32(&h->rows) || !r.U64(&loss_bits) || !r.U64(&n)) {
    return Bad(key, "truncated header");
  }
  h->loss = std::bit_cast<double>(loss_bits);
  if (r.remaining() != n * 8) return Bad(key, "entry count does not match its size");
  index->resize(n);
  value->resize(n);
  ReadArray(&r, n, index->data());
  ReadArray(&r, n, value->data());
  return Status::OK();
}

std::string EncodeCursor(const Cursor& c) {
  std::string out;
  PutU32(&out, kCursorMagic);
  PutU64(&out, c.round);
  PutU32(&out, c.inflight);
  PutU32(&out, c.next);
  PutU64(&out, c.samples);
  PutF64(&out, c.loss);
  PutU32(&out, static_cast<uint32_t>(c.redo.size()));
  PutArray(&out, std::span<const uint32_t>(c.redo));
  PutU32(&out, static_cast<uint32_t>(c.done.size()));
  PutArray(&out, std::span<const uint8_t>(c.done));
  Seal(&out);
  return out;
}

Status DecodeCursor(std::string_view bytes, std::string_view key, Cursor* c) {
  coding::Reader r("");
  VIRGA_RETURN_IF_ERROR(Open(bytes, key, kCursorMagic, &r));
  uint64_t loss_bits = 0;
  uint32_t n = 0;
  if (!r.U64(&c->round) || !r.U32(&c->inflight) || !r.U32(&c->next) || !r.U64(&c->samples) ||
      !r.U64(&loss_bits) || !r.U32(&n)) {
    return Bad(key, "truncated header");
  }
  c->loss = std::bit_cast<double>(loss_bits);
  c->redo.resize(n);
  if (!ReadArray(&r, n, c->redo.data())) return Bad(key, "truncated redo list");
  if (!r.U32(&n)) return Bad(key, "truncated");
  c->done.resize(n);
  if (!ReadArray(&r, n, c->done.data()) || r.remaining() != 0) return Bad(key, "bad done list size");
  return Status::OK();
}

}  // namespace virga::channel
