// Fast, strict number parsing on string_view for the line parsers.
//
// Every function consumes the whole input: an empty string, leading or
// trailing blanks and trailing junk ("1.5x") are kBad. Floats accept the
// std::from_chars general syntax ("1", "-0.5", ".5", "1.", "2e-3") plus an
// optional leading '+' ("+1" labels); NaN and infinity spellings parse but are
// reported as kNaN / kInfinite, never stored. Integers are plain decimal
// digits with an optional '-' (no '+', no spaces).
//
// Internal to src/formats (not part of the public API).
#pragma once

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace virga::formats {

enum class NumStatus : uint8_t {
  kOk,
  kBad,         // not a number of the expected kind
  kOutOfRange,  // a number, but too large (or negative for an index)
  kNaN,
  kInfinite,
};

namespace number_internal {

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Slow path: from_chars, then NaN/inf and float underflow handling.
inline NumStatus ParseFloatSlow(const char* p, const char* end, float* out) {
  if (p != end && *p == '+') {
    ++p;
    if (p == end || *p == '-' || *p == '+') return NumStatus::kBad;
  }
  float f = 0;
  auto [ptr, ec] = std::from_chars(p, end, f);
  if (ptr != end || p == end) return NumStatus::kBad;
  if (ec == std::errc::result_out_of_range) {
    // Too large, or too small for a normal float: decide through double.
    double d = 0;
    if (std::from_chars(p, end, d).ec == std::errc()) {
      if (std::fabs(d) > FLT_MAX) return NumStatus::kOutOfRange;
      f = static_cast<float>(d);  // a subnormal or zero
    } else if (std::string_view(p, end - p).find_first_of("eE") != std::string_view::npos &&
               std::string_view(p, end - p).find('-', 1) != std::string_view::npos) {
      f = *p == '-' ? -0.0f : 0.0f;  // below the smallest double ("1e-400")
    } else {
      return NumStatus::kOutOfRange;
    }
  } else if (ec != std::errc()) {
    return NumStatus::kBad;
  }
  if (std::isnan(f)) return NumStatus::kNaN;
  if (std::isinf(f)) return NumStatus::kInfinite;
  *out = f;
  return NumStatus::kOk;
}

// Exact powers of ten as float (10^10 is the largest exact one).
inline constexpr float kPow10f[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                    1e6f, 1e7f, 1e8f, 1e9f, 1e10f};

}  // namespace number_internal

// Clinger's fast path for the common case: parses [-]digits[.digits] at p
// with a mantissa of at most 2^24 and at most 10 fraction digits, where
// m / 10^k of two exact floats is correctly rounded. Returns the end of the
// number, or nullptr when the text is not of that form (then the caller
// decides with ParseFloat on the whole token). Stops at the first byte that
// is neither a digit nor the first '.'.
inline const char* ParseSimpleFloatPrefix(const char* p, const char* end, float* out) {
  using number_internal::IsDigit;
  bool negative = false;
  if (p != end && *p == '-') {
    negative = true;
    ++p;
  }
  uint64_t m = 0;
  int digits = 0;
  int frac = 0;
  while (p != end && IsDigit(*p) && digits < 18) {
    m = m * 10 + static_cast<unsigned>(*p - '0');
    ++p;
    ++digits;
  }
  if (p != end && *p == '.') {
    ++p;
    while (p != end && IsDigit(*p) && digits < 18) {
      m = m * 10 + static_cast<unsigned>(*p - '0');
      ++p;
      ++digits;
      ++frac;
    }
  }
  if (digits == 0 || m > (uint64_t{1} << 24) || frac > 10) return nullptr;
  float f = static_cast<float>(m);
  if (frac > 0) f /= number_internal::kPow10f[frac];
  *out = negative ? -f : f;
  return p;
}

// Parses a finite float. Correctly rounded (same result as from_chars).
inline NumStatus ParseFloat(std::string_view s, float* out) {
  const char* const end = s.data() + s.size();
  float f = 0;
  const char* r = ParseSimpleFloatPrefix(s.data(), end, &f);
  if (r != nullptr && r == end) {
    *out = f;
    return NumStatus::kOk;
  }
  return number_internal::ParseFloatSlow(s.data(), end, out);
}

// Parses a finite double (used where float precision is not enough to
// validate, e.g. timestamps). Same syntax as ParseFloat.
inline NumStatus ParseDouble(std::string_view s, double* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  if (p != end && *p == '+') {
    ++p;
    if (p == end || *p == '-' || *p == '+') return NumStatus::kBad;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(p, end, d);
  if (ptr != end || p == end) return NumStatus::kBad;
  if (ec == std::errc::result_out_of_range) return NumStatus::kOutOfRange;
  if (ec != std::errc()) return NumStatus::kBad;
  if (std::isnan(d)) return NumStatus::kNaN;
  if (std::isinf(d)) return NumStatus::kInfinite;
  *out = d;
  return NumStatus::kOk;
}

// Parses a feature index or id: decimal digits, value in [0, 2^32-1].
// "-5" is kOutOfRange (a number, but negative); "-x" and "+5" are kBad.
inline NumStatus ParseIndex(std::string_view s, uint32_t* out) {
  using number_internal::IsDigit;
  const char* p = s.data();
  const char* const end = p + s.size();
  bool negative = false;
  if (p != end && *p == '-') {
    negative = true;
    ++p;
  }
  if (p == end) return NumStatus::kBad;
  while (p + 1 < end && *p == '0') ++p;  // leading zeros do not count
  uint64_t v = 0;
  int digits = 0;
  for (; p != end; ++p, ++digits) {
    if (!IsDigit(*p)) return NumStatus::kBad;
    if (digits < 11) v = v * 10 + static_cast<unsigned>(*p - '0');
  }
  if (negative && v != 0) return NumStatus::kOutOfRange;
  if (digits > 10 || v > std::numeric_limits<uint32_t>::max()) return NumStatus::kOutOfRange;
  *out = static_cast<uint32_t>(v);
  return NumStatus::kOk;
}

// Parses a signed 64-bit decimal integer.
inline NumStatus ParseInt64(std::string_view s, int64_t* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  if (p == end || *p == '+') return NumStatus::kBad;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(p, end, v);
  if (ptr != end) return NumStatus::kBad;
  if (ec == std::errc::result_out_of_range) return NumStatus::kOutOfRange;
  if (ec != std::errc()) return NumStatus::kBad;
  *out = v;
  return NumStatus::kOk;
}

// The message for a failed parse of `text` as a `what` ("index", "label"...):
// "bad index 'ab'", "index 5000000000 out of range", "value is NaN",
// "value is infinite". Long texts are cut to 40 bytes. REQUIRES: st != kOk.
inline std::string NumberError(NumStatus st, std::string_view what, std::string_view text) {
  std::string shown(text.substr(0, 40));
  if (text.size() > 40) shown += "...";
  switch (st) {
    case NumStatus::kOutOfRange:
      return std::string(what) + " " + shown + " out of range";
    case NumStatus::kNaN:
      return std::string(what) + " is NaN";
    case NumStatus::kInfinite:
      return std::string(what) + " is infinite";
    default:
      return "bad " + std::string(what) + " '" + shown + "'";
  }
}

}  // namespace virga::formats
