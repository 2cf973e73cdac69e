// Criteo TSV: label, 13 integer and 26 categorical fields, each feature field
// hashed to one index. Encoding: criteo_encoding.h and docs/formats.md.
#include <algorithm>
#include <cstring>
#include <string>

#include "formats/criteo_encoding.h"
#include "formats/number_parse.h"
#include "formats/parsers.h"

namespace virga::formats {
namespace {

using criteo::kNumFeatureFields;
using criteo::kNumFields;

// Splits `line` into exactly kNumFields tab-separated fields; false when the
// count differs. (A plain loop: fields are too short for memchr to pay.)
bool SplitFields(std::string_view line, std::string_view* fields) {
  const char* p = line.data();
  const char* const end = p + line.size();
  const char* start = p;
  int n = 0;
  for (; p != end; ++p) {
    if (*p != '\t') continue;
    if (n == kNumFields - 1) return false;
    fields[n++] = std::string_view(start, p - start);
    start = p + 1;
  }
  if (n != kNumFields - 1) return false;
  fields[n] = std::string_view(start, end - start);
  return true;
}

Status FieldError(int field, const std::string& what) {
  return Status::InvalidArgument("field " + std::to_string(field) + " (" +
                                 criteo::FieldName(field) + "): " + what);
}

class CriteoParser final : public LineParser {
 public:
  explicit CriteoParser(int hash_bits) : hash_bits_(hash_bits) {}

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
      index[i - 1] = criteo::IntFieldIndex(i, code, hash_bits_);
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

 private:
  const int hash_bits_;
};

}  // namespace

std::unique_ptr<LineParser> NewCriteoParser(int hash_bits) {
  return std::make_unique<CriteoParser>(hash_bits);
}

}  // namespace virga::formats
