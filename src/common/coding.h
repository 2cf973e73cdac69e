// Little-endian fixed-width encoding for checkpoint and snapshot blobs:
// appenders and a bounds-checked reader over a byte string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xxhash.h>

namespace virga::coding {

inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
// Overwrites 8 bytes at `pos` (a length or checksum written after the body).
inline void PatchU64(std::string* out, size_t pos, uint64_t v) {
  for (int i = 0; i < 8; ++i) (*out)[pos + i] = static_cast<char>(v >> (8 * i));
}

// Bounds-checked reader: every call returns false, consuming nothing, when
// too few bytes remain.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  size_t remaining() const { return in_.size(); }
  bool U32(uint32_t* v) { return Fixed(v, 4); }
  bool U64(uint64_t* v) { return Fixed(v, 8); }
  bool Bytes(uint64_t n, std::string_view* v) {
    if (n > in_.size()) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }

 private:
  template <typename T>
  bool Fixed(T* v, size_t n) {
    if (in_.size() < n) return false;
    T r = 0;
    for (size_t i = 0; i < n; ++i) r |= static_cast<T>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(n);
    *v = r;
    return true;
  }
  std::string_view in_;
};

// Blobs end with the XXH3-64 of everything before it. Sets *body to the part
// before the checksum and returns true if the checksum matches.
// REQUIRES: bytes.size() >= 8.
inline bool VerifyChecksumTrailer(std::string_view bytes, std::string_view* body) {
  *body = bytes.substr(0, bytes.size() - 8);
  uint64_t stored = 0;
  Reader(bytes.substr(body->size())).U64(&stored);
  return XXH3_64bits(body->data(), body->size()) == stored;
}

}  // namespace virga::coding
