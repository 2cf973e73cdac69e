// The Criteo TSV feature encoding, shared by the Criteo parser and the
// synthetic generator (datagen). The normative description, precise enough
// to reimplement bit for bit, is in docs/formats.md ("Criteo TSV").
//
// A line is 40 tab-separated fields: field 0 the label, fields 1..13 the
// integer features I1..I13, fields 14..39 the categorical features C1..C26.
// Each feature field f (1..39) yields exactly one feature of value 1 whose
// index is the top `hash_bits` bits of XXH3_64bits_withSeed(bytes, len, f):
//   integer field:     bytes = IntCode(v) as 8 bytes little-endian
//                      (kMissingIntCode when the field is empty);
//   categorical field: bytes = the field's text as given ("" when empty).
//
// Internal to src/formats (not part of the public API).
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace virga::criteo {

inline constexpr int kNumIntFields = 13;
inline constexpr int kNumCatFields = 26;
inline constexpr int kNumFeatureFields = kNumIntFields + kNumCatFields;  // 39
inline constexpr int kNumFields = 1 + kNumFeatureFields;                 // 40, with the label
inline constexpr int kFirstCatField = 1 + kNumIntFields;                 // 14 (C1)

// The code hashed for an empty integer field.
inline constexpr int64_t kMissingIntCode = std::numeric_limits<int64_t>::min();
// The code of every integer v >= 2^32 (one bucket for absurdly large counts).
inline constexpr int64_t kHugeIntCode = 1999;

// The bucket code of an integer feature value:
//   v <= 2:        v
//   2 < v < 2^32:  1000 + floor(ln(v)^2)   (1001 .. 1491)
//   v >= 2^32:     kHugeIntCode (1999)
// In binary64 arithmetic the floor is exact for every v < 2^32: ln(v)^2 is
// never within 7e-13 (relative) of an integer there, thousands of ulps.
int64_t IntCode(int64_t v);

// XXH3_64bits_withSeed over the 8 little-endian bytes of `code`, seed `field`.
uint64_t HashIntCode(int field, int64_t code);

// XXH3_64bits_withSeed over the bytes of `text`, seed `field`.
uint64_t HashCategorical(int field, std::string_view text);

// The feature index of a field hash: its top `hash_bits` bits.
// REQUIRES: 1 <= hash_bits <= 32.
inline uint32_t IndexOfHash(uint64_t hash, int hash_bits) {
  return static_cast<uint32_t>(hash >> (64 - hash_bits));
}

// Feature indices of one field value, for callers outside the parser.
// REQUIRES: 1 <= field <= 13 for IntFieldIndex, 14 <= field <= 39 for
// CatFieldIndex; 1 <= hash_bits <= 32.
inline uint32_t IntFieldIndex(int field, int64_t code, int hash_bits) {
  return IndexOfHash(HashIntCode(field, code), hash_bits);
}
inline uint32_t CatFieldIndex(int field, std::string_view text, int hash_bits) {
  return IndexOfHash(HashCategorical(field, text), hash_bits);
}

// "label", "I1".."I13", "C1".."C26" for fields 0..39.
const char* FieldName(int field);

}  // namespace virga::criteo
