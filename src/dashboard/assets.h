// The page's files, embedded into the binary at build time (web/embed.cmake
// generates dashboard_assets.cc from web/src and the uPlot npm package).
#pragma once

#include <cstddef>
#include <string_view>

namespace virga::dash {

struct Asset {
  const char* path;          // "/", "/app.js", "/style.css"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

// The asset served at `path`, or null.
const Asset* FindAsset(std::string_view path);

}  // namespace virga::dash
