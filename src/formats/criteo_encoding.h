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

// IntFieldIndex of every integer field for the codes most values have (the
// missing code, small counts -8..2, the logarithmic buckets 1001..1491 and
// kHugeIntCode), computed once for one hash_bits: a lookup instead of a hash
// per value. Other codes (counts below -8) are hashed.
class IntIndexTable {
 public:
  explicit IntIndexTable(int hash_bits);
  uint32_t Index(int field, int64_t code) const {
    const int slot = Slot(code);
    return slot >= 0 ? table_[field - 1][slot] : IntFieldIndex(field, code, hash_bits_);
  }

 private:
  static constexpr int kSmallMin = -8, kLogMin = 1001, kLogMax = 1491;
  static constexpr int kSlots = (2 - kSmallMin + 1) + (kLogMax - kLogMin + 1) + 2;
  static int Slot(int64_t code) {
    if (code >= kSmallMin && code <= 2) return static_cast<int>(code - kSmallMin);
    if (code >= kLogMin && code <= kLogMax)
      return static_cast<int>(code - kLogMin) + (3 - kSmallMin);
    if (code == kHugeIntCode) return kSlots - 2;
    if (code == kMissingIntCode) return kSlots - 1;
    return -1;
  }
  static int64_t CodeOfSlot(int slot) {
    if (slot < 3 - kSmallMin) return slot + kSmallMin;
    if (slot < kSlots - 2) return slot - (3 - kSmallMin) + kLogMin;
    return slot == kSlots - 2 ? kHugeIntCode : kMissingIntCode;
  }
  int hash_bits_;
  uint32_t table_[kNumIntFields][kSlots];
};

// "label", "I1".."I13", "C1".."C26" for fields 0..39.
const char* FieldName(int field);

}  // namespace virga::criteo
