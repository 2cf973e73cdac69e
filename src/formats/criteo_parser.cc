// Criteo TSV: label, 13 integer and 26 categorical fields, each feature field
// hashed to one index. Encoding: criteo_encoding.h and docs/formats.md.
#include <algorithm>
#include <cstring>
#include <string>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "formats/criteo_encoding.h"
#include "formats/number_parse.h"
#include "formats/parsers.h"

namespace virga::formats {
namespace {

using criteo::kNumFeatureFields;
using criteo::kNumFields;

// Splits `line` into exactly kNumFields tab-separated fields; false when the
// count differs. Fields are a few bytes each, too short for memchr to pay: on
// x86-64 16 bytes are compared at once and the tabs taken from the bit mask
// (no branch per byte), elsewhere one byte at a time.
bool SplitFields(std::string_view line, std::string_view* fields) {
  const char* const begin = line.data();
  const size_t size = line.size();
  size_t start = 0, i = 0;
  int n = 0;
  auto tab = [&](size_t at) {
    if (n == kNumFields - 1) return false;
    fields[n++] = std::string_view(begin + start, at - start);
    start = at + 1;
    return true;
  };
#if defined(__SSE2__)
  const __m128i tabs = _mm_set1_epi8('\t');
  for (; i + 16 <= size; i += 16) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(begin + i));
    for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, tabs)));
         mask != 0; mask &= mask - 1) {
      if (!tab(i + static_cast<size_t>(__builtin_ctz(mask)))) return false;
    }
  }
#endif
  for (; i < size; ++i)
    if (begin[i] == '\t' && !tab(i)) return false;
  if (n != kNumFields - 1) return false;
  fields[n] = std::string_view(begin + start, size - start);
  return true;
}

Status FieldError(int field, const std::string& what) {
  return Status::InvalidArgument("field " + std::to_string(field) + " (" +
                                 criteo::FieldName(field) + "): " + what);
}

class CriteoParser final : public LineParser {
 public:
  explicit CriteoParser(int hash_bits) : hash_bits_(hash_bits), int_index_(hash_bits) {}

  // Every field is checked and hashed before anything is appended, so an
  // error leaves *out untouched.
  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    *added = false;
    if (line.empty()) return Status::OK();
    std::string_view f[kNumFields];
    if (!SplitFields(line, f)) {
      const size_t found = 1 + std::count(line.begin(), line.end(), '\t');
      return Status::InvalidArgument("expected 40 tab-separated fields, found " +
                                     std::to_string(found));
    }
    float label = 0;
    if (f[0] == "1") {
      label = 1;
    } else if (f[0] != "0") {
      if (f[0].empty()) return Status::InvalidArgument("missing label");
      return Status::InvalidArgument("bad label '" + std::string(f[0].substr(0, 40)) +
                                     "' (expected 0 or 1)");
    }
    uint32_t index[kNumFeatureFields];
    for (int i = 1; i < criteo::kFirstCatField; ++i) {
      int64_t code = criteo::kMissingIntCode;
      if (!f[i].empty()) {
        int64_t v = 0;
        if (NumStatus st = ParseInt64(f[i], &v); st != NumStatus::kOk) {
          return FieldError(i, NumberError(st, "integer", f[i]));
        }
        code = criteo::IntCode(v);
      }
      index[i - 1] = int_index_.Index(i, code);
    }
    for (int i = criteo::kFirstCatField; i < kNumFields; ++i) {
      index[i - 1] = criteo::CatFieldIndex(i, f[i], hash_bits_);
    }
    for (uint32_t idx : index) out->AddFeature(idx, 1.0f);
    out->EndRow(label);
    *added = true;
    return Status::OK();
  }

  uint64_t index_bound() const override { return uint64_t{1} << hash_bits_; }
  bool values_are_ones() const override { return true; }

 private:
  const int hash_bits_;
  const criteo::IntIndexTable int_index_;
};

}  // namespace

std::unique_ptr<LineParser> NewCriteoParser(int hash_bits) {
  return std::make_unique<CriteoParser>(hash_bits);
}

}  // namespace virga::formats
