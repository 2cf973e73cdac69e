// LIBSVM: "label idx:val idx:val ... [# comment]". Rules: docs/formats.md.
#include <cstring>
#include <string>

#include "formats/number_parse.h"
#include "formats/parsers.h"

namespace virga::formats {
namespace {

using number_internal::IsDigit;

const char* SkipBlanks(const char* p, const char* end) {
  while (p != end && IsBlank(*p)) ++p;
  return p;
}

const char* TokenEnd(const char* p, const char* end) {
  while (p != end && !IsBlank(*p)) ++p;
  return p;
}

Status FeatureError(int feature, const std::string& what) {
  return Status::InvalidArgument("feature " + std::to_string(feature) + ": " + what);
}

class LibsvmParser final : public LineParser {
 public:
  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    *added = false;
    Status s = Parse(line, out, added);
    if (!s.ok()) out->AbandonRow();
    return s;
  }

  uint64_t index_bound() const override { return 0; }

 private:
  // Appends the row of `line` if it holds one. On error, features of the
  // row may have been added; the caller abandons them.
  Status Parse(std::string_view line, RowBlock* out, bool* added) {
    const char* p = line.data();
    const char* end = p + line.size();
    if (const void* hash = std::memchr(p, '#', line.size())) end = static_cast<const char*>(hash);
    p = SkipBlanks(p, end);
    if (p == end) return Status::OK();  // blank or comment: no row

    const char* tok = p;
    p = TokenEnd(p, end);
    const std::string_view label_text(tok, p - tok);
    if (label_text.find(':') != std::string_view::npos) {
      return Status::InvalidArgument("missing label");
    }
    float label = 0;
    if (NumStatus st = ParseFloat(label_text, &label); st != NumStatus::kOk) {
      return Status::InvalidArgument(NumberError(st, "label", label_text));
    }

    int feature = 0;  // 1-based number of the feature being parsed
    while ((p = SkipBlanks(p, end)) != end) {
      ++feature;
      tok = p;
      // Fast path: up to 10 digits, then ':'.
      uint64_t index = 0;
      const char* q = p;
      while (q != end && IsDigit(*q) && q - p < 10) {
        index = index * 10 + static_cast<unsigned>(*q - '0');
        ++q;
      }
      if (q == p || q == end || *q != ':' || index > UINT32_MAX) {
        bool skip = false;
        VIRGA_RETURN_IF_ERROR(ParseIndexSlow(tok, end, feature, &index, &q, &skip));
        if (skip) {  // qid:N
          --feature;
          p = q;
          continue;
        }
      }
      const char* v = q + 1;
      float value = 1.0f;
      const char* r = nullptr;
      if (v != end && *v == '1' && (v + 1 == end || IsBlank(v[1]))) {
        p = v + 1;  // "idx:1", the common binary feature
      } else if ((r = ParseSimpleFloatPrefix(v, end, &value)) != nullptr &&
                 (r == end || IsBlank(*r))) {
        p = r;
      } else {
        p = TokenEnd(v, end);
        const std::string_view value_text(v, p - v);
        if (NumStatus st = ParseFloat(value_text, &value); st != NumStatus::kOk) {
          return FeatureError(feature, NumberError(st, "value", value_text));
        }
      }
      out->AddFeature(static_cast<uint32_t>(index), value);
    }
    out->EndRow(label);
    *added = true;
    return Status::OK();
  }

  // The index of the token at `tok` when the fast path could not read it:
  // leading zeros, "qid:N" (*skip = true, *colon = the token's end), or an
  // error. On success *colon points at the ':' before the value.
  static Status ParseIndexSlow(const char* tok, const char* end, int feature, uint64_t* index,
                               const char** colon, bool* skip) {
    const char* tok_end = TokenEnd(tok, end);
    const std::string_view token(tok, tok_end - tok);
    const size_t c = token.find(':');
    if (c == std::string_view::npos) {
      std::string shown(token.substr(0, 40));
      return FeatureError(feature, "expected index:value, got '" + shown + "'");
    }
    const std::string_view name = token.substr(0, c);
    if (name == "qid") {
      *skip = true;
      *colon = tok_end;
      return Status::OK();
    }
    uint32_t i = 0;
    if (NumStatus st = ParseIndex(name, &i); st != NumStatus::kOk) {
      return FeatureError(feature, NumberError(st, "index", name));
    }
    *index = i;
    *colon = tok + c;
    return Status::OK();
  }
};

}  // namespace

std::unique_ptr<LineParser> NewLibsvmParser() { return std::make_unique<LibsvmParser>(); }

}  // namespace virga::formats
