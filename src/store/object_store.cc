// ObjectStore::Open (routing by URI scheme) and the key rules shared by every
// backend.

#include "virga/object_store.h"

#include <cstdio>

#include "store/file_store.h"
#include "store/mem_store.h"
#include "store/s3_store.h"
#include "store/throttled_store.h"

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

namespace {

// The registry of store schemes: one line per backend. `open` receives the URI
// without "<scheme>://".
struct StoreScheme {
  std::string_view scheme;  // "s3" for s3://...
  Result<std::shared_ptr<ObjectStore>> (*open)(std::string_view rest);
};
constexpr StoreScheme kStoreSchemes[] = {
    {"file", &FileStore::Open},
    {"mem", &MemStore::Open},
    {"s3", &S3Store::Open},
};

const StoreScheme* FindScheme(std::string_view uri, std::string_view* rest) {
  size_t sep = uri.find("://");
  if (sep == std::string_view::npos) return nullptr;
  for (const StoreScheme& s : kStoreSchemes) {
    if (uri.substr(0, sep) == s.scheme) {
      *rest = uri.substr(sep + 3);
      return &s;
    }
  }
  return nullptr;
}

std::string KnownSchemes() {
  std::string known;
  for (const StoreScheme& s : kStoreSchemes) {
    if (!known.empty()) known += ", ";
    known += std::string(s.scheme) + "://";
  }
  return known;
}

Status UnknownScheme(std::string_view uri) {
  return Status::InvalidArgument("object store URI \"" + std::string(uri) +
                                 "\": unknown scheme (known: " + KnownSchemes() + ")");
}

}  // namespace

Result<std::shared_ptr<ObjectStore>> ObjectStore::Open(std::string_view uri) {
  std::string_view rest;
  const StoreScheme* scheme = FindScheme(uri, &rest);
  if (scheme == nullptr) {
    if (uri.find("://") != std::string_view::npos) return UnknownScheme(uri);
    return MaybeThrottle(FileStore::Open(uri));  // a plain path
  }
  return MaybeThrottle(scheme->open(rest));  // VIRGA_STORE_LATENCY_MS, VIRGA_STORE_BANDWIDTH_MBPS
}

bool IsObjectUri(std::string_view uri) {
  std::string_view rest;
  const StoreScheme* scheme = FindScheme(uri, &rest);
  return scheme != nullptr && scheme->scheme != "file";
}

Result<ObjectRef> OpenObjectUri(std::string_view uri) {
  std::string_view rest;
  const StoreScheme* scheme = FindScheme(uri, &rest);
  if (scheme == nullptr) {
    if (uri.find("://") != std::string_view::npos) return UnknownScheme(uri);
    return Status::InvalidArgument("\"" + std::string(uri) + "\" is not an object URI");
  }
  // <scheme>://<root>/<key>: the root is the bucket (s3) or store name (mem);
  // file:// roots at the object's directory.
  size_t slash = scheme->scheme == "file" ? rest.rfind('/') : rest.find('/');
  if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
    return Status::InvalidArgument("object URI \"" + std::string(uri) +
                                   "\": expected " + std::string(scheme->scheme) +
                                   "://<root>/<key>");
  }
  ObjectRef ref;
  ref.key = std::string(rest.substr(slash + 1));
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(ref.key));
  VIRGA_ASSIGN_OR_RETURN(ref.store,
                         MaybeThrottle(scheme->open(rest.substr(0, slash == 0 ? 1 : slash))));
  return ref;
}

}  // namespace virga
