#include "formats/criteo_encoding.h"

// Header-only xxhash: XXH3 is inlined into the per-field hash functions.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <array>
#include <cmath>

namespace virga::criteo {

namespace {

int64_t IntCodeByLog(int64_t v) {
  const double l = std::log(static_cast<double>(v));
  return 1000 + static_cast<int64_t>(std::floor(l * l));
}

// IntCode of the small counts most values are, without a log call.
constexpr int kSmallCodes = 1024;
const std::array<int16_t, kSmallCodes>& SmallCodes() {
  static const std::array<int16_t, kSmallCodes> codes = [] {
    std::array<int16_t, kSmallCodes> c{};
    for (int v = 0; v < kSmallCodes; ++v) {
      c[v] = static_cast<int16_t>(v <= 2 ? v : IntCodeByLog(v));
    }
    return c;
  }();
  return codes;
}

}  // namespace

int64_t IntCode(int64_t v) {
  if (v <= 2) return v;
  if (v < kSmallCodes) return SmallCodes()[v];
  if (v >= (int64_t{1} << 32)) return kHugeIntCode;
  return IntCodeByLog(v);
}

uint64_t HashIntCode(int field, int64_t code) {
  const uint64_t u = static_cast<uint64_t>(code);
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(u >> (8 * i));
  return XXH3_64bits_withSeed(bytes, sizeof(bytes), static_cast<XXH64_hash_t>(field));
}

uint64_t HashCategorical(int field, std::string_view text) {
  return XXH3_64bits_withSeed(text.data(), text.size(), static_cast<XXH64_hash_t>(field));
}

IntIndexTable::IntIndexTable(int hash_bits) : hash_bits_(hash_bits) {
  for (int f = 1; f <= kNumIntFields; ++f)
    for (int s = 0; s < kSlots; ++s) table_[f - 1][s] = IntFieldIndex(f, CodeOfSlot(s), hash_bits);
}

const char* FieldName(int field) {
  static constexpr const char* kNames[kNumFields] = {
      "label", "I1",  "I2",  "I3",  "I4",  "I5",  "I6",  "I7",  "I8",  "I9",
      "I10",   "I11", "I12", "I13", "C1",  "C2",  "C3",  "C4",  "C5",  "C6",
      "C7",    "C8",  "C9",  "C10", "C11", "C12", "C13", "C14", "C15", "C16",
      "C17",   "C18", "C19", "C20", "C21", "C22", "C23", "C24", "C25", "C26"};
  return field >= 0 && field < kNumFields ? kNames[field] : "?";
}

}  // namespace virga::criteo
