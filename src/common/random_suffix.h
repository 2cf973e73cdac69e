// A 16-hex-digit random string for temporary file names (O_EXCL collisions
// practically never happen). Thread-safe: one generator per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>

namespace virga {

inline std::string RandomSuffix() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   std::hash<std::thread::id>{}(std::this_thread::get_id()));
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t x = rng();
  std::string s(16, '0');
  for (char& c : s) {
    c = kHex[x & 15];
    x >>= 4;
  }
  return s;
}

}  // namespace virga
