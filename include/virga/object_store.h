// ObjectStore: where datasets, checkpoints, exported models and results live.
//
// Modelled on S3-like stores so that cloud backends slot in later:
//  - An object is a byte string under a key. Keys are '/'-separated paths of
//    1..1024 bytes: no leading '/', no empty, "." or ".." component, no NUL,
//    no '\' and no component containing ".virga-tmp-" (reserved for the
//    temporary files of in-flight Puts). The same rules hold on every
//    backend, so a key valid on mem:// is valid on file://. (A local
//    filesystem may still refuse a component longer than 255 bytes, or a key
//    that is both an object and a "directory" of other keys: IOError.)
//  - Put is atomic: a concurrent reader sees the old object or the new one,
//    never a mix. virga writes each key once (objects are immutable by
//    convention); callers never rely on rename, append or in-place update.
//    A dataset or checkpoint is committed by writing its manifest last.
//  - Every fault is a Status whose message names the key; nothing throws.
//
// Backends are chosen by URI scheme through one registry table
// (src/store/object_store.cc): file:///abs/dir (the default), mem://name
// (process-local, for tests), s3://bucket[/prefix] (S3 and S3-compatible
// stores; src/store/s3_store.h). Thread safety: all methods may be called
// concurrently from many threads on one instance.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga {

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;  // bytes
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Opens a store by URI:
  //   file:///abs/dir   a local directory (created if missing)
  //   file://rel/dir    a directory relative to the working directory
  //   /abs/dir, rel/dir a plain path means file://
  //   mem://name        in-memory; every Open of the same name in one process
  //                     shares the same objects (so tests can reopen)
  //   s3://bucket[/prefix]  S3 or an S3-compatible store, with the AWS
  //                     conventions for credentials, region and endpoint
  // Unknown schemes are InvalidArgument naming the URI. When the environment
  // sets VIRGA_STORE_LATENCY_MS and/or VIRGA_STORE_BANDWIDTH_MBPS, the store
  // is wrapped in a decorator that emulates a cloud store's latency per
  // request and bandwidth per process (src/store/throttled_store.h); a bad
  // value there is InvalidArgument naming the variable.
  static Result<std::shared_ptr<ObjectStore>> Open(std::string_view uri);

  // The URI this store was opened with, normalised (e.g. "file:///tmp/x").
  virtual std::string uri() const = 0;

  // Writes `data` under `key`, replacing any object there, atomically. On
  // file:// the object is durable (fdatasync'd, directory synced) on return.
  virtual Status Put(std::string_view key, std::string_view data) = 0;

  // Reads the whole object into *out (its capacity is reused: pass the same
  // string again to avoid allocation). NotFound if absent.
  virtual Status Get(std::string_view key, std::string* out) = 0;

  // Reads bytes [offset, offset + length) into *out. A range running past the
  // end is cut at the end; an offset beyond the end is OutOfRange (offset ==
  // size reads nothing and is OK). NotFound if the object is absent.
  virtual Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                          std::string* out) = 0;

  // All objects whose key starts with `prefix` (plain string prefix, as S3),
  // sorted by key. An empty prefix lists everything.
  virtual Result<std::vector<ObjectInfo>> List(std::string_view prefix) = 0;

  // Removes the object. Deleting an absent key is OK (idempotent, as S3).
  virtual Status Delete(std::string_view key) = 0;

  // Whether an object exists under `key`.
  virtual Result<bool> Exists(std::string_view key) = 0;

  // Key and size of one object; NotFound if absent.
  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;
};

// Checks the key rules above; InvalidArgument naming the key if broken.
Status ValidateObjectKey(std::string_view key);

// One object named by a URI: "s3://bucket/raw/day0.gz", "mem://name/key",
// "file:///dir/file" (its store is the object's directory).
struct ObjectRef {
  std::shared_ptr<ObjectStore> store;
  std::string key;
};
// Splits `uri` at its root (bucket, store name) and opens that store.
// InvalidArgument naming the URI when it has no scheme, an unknown scheme or
// no key.
Result<ObjectRef> OpenObjectUri(std::string_view uri);
// Whether `uri` names an object in a store other than the local filesystem
// ("s3://...", "mem://..."), i.e. input that is read through a store.
bool IsObjectUri(std::string_view uri);

}  // namespace virga
