// MemStore: the mem:// backend, an in-process fake for tests.
//
// Objects live in a process-wide registry keyed by store name: every Open of
// "mem://x" shares one object map, which lives until the process exits (so a
// test may drop its handle and reopen). Objects are held as immutable
// shared strings; a Put builds the new string before taking the lock and a
// Get copies it out after releasing the lock, so the lock only guards map
// lookups, never a copy of object bytes.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "virga/object_store.h"

namespace virga {

class MemStore final : public ObjectStore {
 public:
  // Never fails; any name (even empty) is a valid store.
  static Result<std::shared_ptr<ObjectStore>> Open(std::string_view name);

  std::string uri() const override { return "mem://" + name_; }
  Status Put(std::string_view key, std::string_view data) override;
  Status Get(std::string_view key, std::string* out) override;
  Status GetRange(std::string_view key, uint64_t offset, uint64_t length,
                  std::string* out) override;
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;
  Result<bool> Exists(std::string_view key) override;
  Result<ObjectInfo> Stat(std::string_view key) override;

  // The objects of one store name, shared by all its MemStore instances.
  struct Objects {
    std::shared_mutex mu;
    std::map<std::string, std::shared_ptr<const std::string>, std::less<>> map;  // GUARDED_BY(mu)
  };

 private:
  MemStore(std::string name, std::shared_ptr<Objects> objects)
      : name_(std::move(name)), objects_(std::move(objects)) {}

  // The object under `key` (validated), or null if absent.
  Result<std::shared_ptr<const std::string>> Find(std::string_view key) const;
  Status NotFound(std::string_view key) const;

  const std::string name_;
  const std::shared_ptr<Objects> objects_;
};

}  // namespace virga
