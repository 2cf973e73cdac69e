// Timestamps as written into manifests and model files, and as ids use them.
#pragma once

#include <ctime>
#include <string>

namespace virga {

// The current time as ISO 8601 UTC with second precision: "2026-11-28T09:27:35Z".
inline std::string UtcNowIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The current UTC time for ids: "20261128-092735".
inline std::string UtcNowCompact() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace virga
