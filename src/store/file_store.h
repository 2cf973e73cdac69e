// FileStore: the file:// backend. Objects are files under a root directory;
// key "a/b/c" is the file <root>/a/b/c.
//
// Put writes <path>.virga-tmp-<random> in the target directory, fdatasyncs
// it, renames it over <path> and syncs the directory, so readers (which open
// a file by name and then read that inode) see the old or the new object,
// never a mix. A writer that crashes leaves its temp file behind: List skips
// it, and keys may not contain the marker, so it can never be read as an
// object. (Cleaning such leftovers is a later maintenance task.)
//
// Directories are created on Put and pruned, when empty, on Delete, so that
// after deleting "a/b" the key "a" can be written again. A key that is both
// an object and a prefix of another ("a" and "a/b") cannot exist on a
// filesystem: the later Put fails with IOError.
//
// Thread safety: all methods are safe to call concurrently; there is no
// in-process state besides the root path.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/atomic_file.h"
#include "virga/object_store.h"

namespace virga {

// Marks the temporary file of an in-flight Put; reserved in keys.
inline constexpr std::string_view kTempMarker = kAtomicTempMarker;

class FileStore final : public ObjectStore {
 public:
  // `path` is absolute or relative to the working directory; created if
  // missing. InvalidArgument if it exists and is not a directory.
  static Result<std::shared_ptr<ObjectStore>> Open(std::string_view path);

  std::string uri() const override { return "file://" + root_; }
  Status Put(std::string_view key, std::string_view data) override;
  Status Get(std::string_view key, std::string* out) override;
  Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                  std::string* out) override;
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;
  Result<bool> Exists(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;

 private:
  explicit FileStore(std::string root) : root_(std::move(root)) {}

  std::string PathOf(std::string_view key) const;
  Status MakeParentDirs(std::string_view key) const;
  void PruneEmptyParents(std::string_view key) const;
  // Opens `key` for reading; *fd is -1 on error. *size is the object's size.
  Status OpenForRead(std::string_view key, int* fd, uint64_t* size) const;
  Status ListDir(const std::string& dir_key, std::string_view prefix,
                 std::vector<ObjectInfo>* out) const;

  const std::string root_;  // absolute, normalised, no trailing '/' (unless "/")
};

}  // namespace virga
