#include "stage/stats_piece.h"

#include <xxhash.h>

#include "common/coding.h"
#include "ingest/ingest_part.h"
#include "virga/normalize.h"

namespace virga::stage {
namespace {

constexpr uint32_t kMagic = 0x31505356;  // "VSP1"

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto b = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    r |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

}  // namespace

StatsPiece StatsPiece::FromAll(std::vector<FeatureStat>&& all) {
  StatsPiece p;
  for (FeatureStat& f : all) {
    if (IsNumericFeature(f)) {
      p.numeric.push_back(f);
    } else if (f.count > 0) {
      p.binary.emplace_back(f.index, f.count);
    }
  }
  return p;
}

void StatsPiece::Merge(StatsPiece&& other) {
  ingest_internal::MergeStatsPieces(&numeric, &binary, std::move(other.numeric),
                                    std::move(other.binary));
}

std::string EncodeStatsPiece(const StatsPiece& piece) {
  std::string out;
  coding::PutU32(&out, kMagic);
  const std::string numeric = EncodeFeatureStats(piece.numeric);
  coding::PutU64(&out, numeric.size());
  out += numeric;
  coding::PutU64(&out, piece.binary.size());
  uint32_t prev = 0;
  for (const auto& [index, count] : piece.binary) {
    PutVarint(&out, index - prev);
    PutVarint(&out, count);
    prev = index;
  }
  coding::PutU64(&out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<StatsPiece> DecodeStatsPiece(std::string_view bytes, std::string_view key) {
  auto bad = [&](const char* what) {
    return Status::Corruption("statistics object " + std::string(key) + ": " + what);
  };
  std::string_view body;
  if (bytes.size() < 8 || !coding::VerifyChecksumTrailer(bytes, &body)) return bad("checksum mismatch");
  coding::Reader r(body);
  uint32_t magic = 0;
  uint64_t numeric_len = 0, binary_n = 0;
  std::string_view numeric;
  if (!r.U32(&magic) || magic != kMagic) return bad("not a statistics object");
  if (!r.U64(&numeric_len) || !r.Bytes(numeric_len, &numeric)) return bad("truncated");
  StatsPiece p;
  VIRGA_ASSIGN_OR_RETURN(p.numeric, DecodeFeatureStats(numeric, key));
  if (!r.U64(&binary_n) || binary_n > r.remaining()) return bad("truncated");
  std::string_view rest;
  r.Bytes(r.remaining(), &rest);
  p.binary.reserve(binary_n);
  uint64_t index = 0;
  for (uint64_t i = 0; i < binary_n; ++i) {
    uint64_t delta = 0, count = 0;
    if (!GetVarint(&rest, &delta) || !GetVarint(&rest, &count)) return bad("truncated");
    index += delta;
    if (index > UINT32_MAX || (i > 0 && delta == 0)) return bad("indices out of order");
    p.binary.emplace_back(static_cast<uint32_t>(index), count);
  }
  if (!rest.empty()) return bad("trailing bytes");
  return p;
}

}  // namespace virga::stage
