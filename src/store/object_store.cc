// ObjectStore::Open (routing by URI scheme) and the key rules shared by every
// backend.

#include "virga/object_store.h"

#include <cstdio>

#include "store/file_store.h"
#include "store/mem_store.h"

namespace virga {
namespace {

constexpr size_t kMaxObjectKeyBytes = 1024;

// A key for an error message: cut to 100 bytes, non-printable bytes escaped,
// so a key holding NUL or 2 KB of junk still yields a readable message.
std::string Printable(std::string_view key) {
  std::string out = "\"";
  for (size_t i = 0; i < key.size() && i < 100; ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '"') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  if (key.size() > 100) out += "...";
  out += "\"";
  return out;
}

Status BadKey(std::string_view key, std::string_view why) {
  std::string m = "invalid object key " + Printable(key) + ": ";
  m += why;
  return Status::InvalidArgument(std::move(m));
}

}  // namespace

Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return BadKey(key, "empty");
  if (key.size() > kMaxObjectKeyBytes) return BadKey(key, "longer than 1024 bytes");
  if (key.find('\0') != std::string_view::npos) return BadKey(key, "contains NUL");
  if (key.find('\\') != std::string_view::npos) return BadKey(key, "contains '\\'");
  if (key.find(kTempMarker) != std::string_view::npos) {
    return BadKey(key, "contains the reserved temp-file marker \".virga-tmp-\"");
  }
  if (key.front() == '/') return BadKey(key, "starts with '/'");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view part = key.substr(start, end - start);
    if (part.empty()) return BadKey(key, "has an empty path component");
    if (part == "." || part == "..") return BadKey(key, "has a '.' or '..' component");
    start = end + 1;
  }
  return Status::OK();
}

Result<std::shared_ptr<ObjectStore>> ObjectStore::Open(std::string_view uri) {
  constexpr std::string_view kFile = "file://";
  constexpr std::string_view kMem = "mem://";
  if (uri.starts_with(kMem)) return MemStore::Open(uri.substr(kMem.size()));
  if (uri.starts_with(kFile)) return FileStore::Open(uri.substr(kFile.size()));
  if (uri.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("object store URI \"" + std::string(uri) +
                                   "\": unknown scheme (known: file://, mem://)");
  }
  return FileStore::Open(uri);
}

}  // namespace virga
