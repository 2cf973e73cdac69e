#include "store/mem_store.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>

namespace virga {
namespace {

struct Registry {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<MemStore::Objects>> stores;  // GUARDED_BY(mu)
};

Registry& GlobalRegistry() {
  static Registry* registry = new Registry;  // never destroyed: usable during exit
  return *registry;
}

}  // namespace

Result<std::shared_ptr<ObjectStore>> MemStore::Open(std::string_view name) {
  Registry& reg = GlobalRegistry();
  std::shared_ptr<Objects> objects;
  {
    std::lock_guard<std::mutex> lock(reg.mu);
    auto& slot = reg.stores[std::string(name)];
    if (slot == nullptr) slot = std::make_shared<Objects>();
    objects = slot;
  }
  return std::shared_ptr<ObjectStore>(new MemStore(std::string(name), std::move(objects)));
}

Status MemStore::NotFound(std::string_view key) const {
  return Status::NotFound(std::string(key) + ": no such object in " + uri());
}

Result<std::shared_ptr<const std::string>> MemStore::Find(std::string_view key) const {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  std::shared_lock lock(objects_->mu);
  auto it = objects_->map.find(key);
  if (it == objects_->map.end()) return std::shared_ptr<const std::string>();
  return it->second;
}

Status MemStore::Put(std::string_view key, std::string_view data) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  auto value = std::make_shared<const std::string>(data);  // the copy, outside the lock
  std::string k(key);
  {
    std::unique_lock lock(objects_->mu);
    auto [it, inserted] = objects_->map.try_emplace(std::move(k), value);
    if (!inserted) it->second.swap(value);  // the old object is freed after unlock
  }
  return Status::OK();
}

Status MemStore::Get(std::string_view key, std::string* out) {
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> obj, Find(key));
  if (obj == nullptr) return NotFound(key);
  out->assign(*obj);
  return Status::OK();
}

Status MemStore::GetRange(std::string_view key, uint64_t offset, uint64_t length,
                          std::string* out) {
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> obj, Find(key));
  if (obj == nullptr) return NotFound(key);
  if (offset > obj->size()) {
    return Status::OutOfRange(std::string(key) + ": offset " + std::to_string(offset) +
                              " is beyond the end (size " + std::to_string(obj->size()) + ")");
  }
  size_t n = static_cast<size_t>(std::min<uint64_t>(length, obj->size() - offset));
  out->assign(*obj, static_cast<size_t>(offset), n);
  return Status::OK();
}

Result<std::vector<ObjectInfo>> MemStore::List(std::string_view prefix) {
  std::vector<ObjectInfo> out;
  std::shared_lock lock(objects_->mu);
  for (auto it = objects_->map.lower_bound(prefix);
       it != objects_->map.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    out.push_back({it->first, it->second->size()});
  }
  return out;
}

Status MemStore::Delete(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  decltype(objects_->map)::node_type node;  // freed after unlock
  {
    std::unique_lock lock(objects_->mu);
    auto it = objects_->map.find(key);
    if (it != objects_->map.end()) node = objects_->map.extract(it);
  }
  return Status::OK();
}

Result<bool> MemStore::Exists(std::string_view key) {
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> obj, Find(key));
  return obj != nullptr;
}

Result<ObjectInfo> MemStore::Stat(std::string_view key) {
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<const std::string> obj, Find(key));
  if (obj == nullptr) return NotFound(key);
  return ObjectInfo{std::string(key), obj->size()};
}

}  // namespace virga
