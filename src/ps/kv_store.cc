#include "ps/kv_store.h"

#include "common/coding.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

namespace virga::ps {
namespace {

constexpr size_t kStripes = 16;          // a power of two: stripe = top hash bits
constexpr uint32_t kMagic = 0x53564B56;  // "VKVS" read as little-endian u32
constexpr uint32_t kFormat = 1;
constexpr size_t kMinEntryBytes = 4 + 1 + 8 + 8;  // key_len, 1-byte key, version, value_len

uint64_t Hash(std::string_view s) { return XXH3_64bits(s.data(), s.size()); }
// The top hash bits pick the stripe, so it is independent of the bucket
// (low bits) inside the stripe's map.
size_t StripeOf(std::string_view key) { return Hash(key) >> 60; }
static_assert(kStripes == 16, "StripeOf takes the top 4 hash bits");

struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return static_cast<size_t>(Hash(s)); }
};

struct Entry {
  std::string value;
  uint64_t version = 0;  // >= 1
};
using Map = std::unordered_map<std::string, Entry, KeyHash, std::equal_to<>>;

struct Stripe {
  mutable std::shared_mutex mu;
  Map map;  // GUARDED_BY(mu)
};

// Keys may be binary; messages show at most 64 bytes, escaped.
std::string Quote(std::string_view key) {
  std::string out = "'";
  for (size_t i = 0; i < key.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (key.size() > 64) out += "...";
  return out + "'";
}

uint32_t ToLittle(uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) {
    v = ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
  }
  return v;
}
float LoadF32(const char* p) {
  uint32_t u;
  std::memcpy(&u, p, 4);
  return std::bit_cast<float>(ToLittle(u));
}
void StoreF32(char* p, float f) {
  uint32_t u = ToLittle(std::bit_cast<uint32_t>(f));
  std::memcpy(p, &u, 4);
}

using coding::PutU32;
using coding::PutU64;
using coding::Reader;

}  // namespace

struct KvStore::Impl {
  explicit Impl(KvLimits l) : limits(l) {}

  Stripe& StripeFor(std::string_view key) { return stripes[StripeOf(key)]; }

  Status CheckKey(std::string_view key) const {
    if (key.empty()) return Status::InvalidArgument("kv: empty key");
    if (key.size() > limits.max_key_bytes) {
      return Status::ResourceExhausted(fmt::format("kv key {}: {} bytes exceeds max_key_bytes {}",
                                                   Quote(key), key.size(), limits.max_key_bytes));
    }
    return Status::OK();
  }
  Status CheckValue(std::string_view key, uint64_t bytes) const {
    if (bytes <= limits.max_value_bytes) return Status::OK();
    return Status::ResourceExhausted(fmt::format("kv key {}: value of {} bytes exceeds max_value_bytes {}",
                                                 Quote(key), bytes, limits.max_value_bytes));
  }
  // Moves total_bytes from `old_bytes` to `new_bytes` for `key`, failing
  // (unchanged) if that would pass max_total_bytes. REQUIRES: key's stripe locked.
  Status Charge(std::string_view key, uint64_t old_bytes, uint64_t new_bytes) {
    if (new_bytes <= old_bytes) {
      total_bytes.fetch_sub(old_bytes - new_bytes, std::memory_order_relaxed);
      return Status::OK();
    }
    const uint64_t add = new_bytes - old_bytes;
    uint64_t cur = total_bytes.load(std::memory_order_relaxed);
    do {
      if (add > limits.max_total_bytes || cur > limits.max_total_bytes - add) {
        return Status::ResourceExhausted(
            fmt::format("kv key {}: {} more bytes would exceed max_total_bytes {} (in use {})",
                        Quote(key), add, limits.max_total_bytes, cur));
      }
    } while (!total_bytes.compare_exchange_weak(cur, cur + add, std::memory_order_relaxed));
    return Status::OK();
  }
  // Sets key's value (inserting at version 1 or bumping the version).
  // REQUIRES: the stripe locked exclusively; key and value checked.
  Status Write(Stripe& s, Map::iterator it, std::string_view key, std::string_view value,
               uint64_t* version) {
    const bool absent = it == s.map.end();
    const uint64_t old_bytes = absent ? 0 : key.size() + it->second.value.size();
    VIRGA_RETURN_IF_ERROR(Charge(key, old_bytes, key.size() + value.size()));
    if (absent) {
      it = s.map.emplace(std::string(key), Entry{std::string(value), 0}).first;
      count.fetch_add(1, std::memory_order_relaxed);
    } else {
      it->second.value.assign(value);
    }
    ++it->second.version;
    if (version != nullptr) *version = it->second.version;
    return Status::OK();
  }

  const KvLimits limits;
  std::array<Stripe, kStripes> stripes;
  std::atomic<uint64_t> total_bytes{0};  // sum of key+value bytes of all entries
  std::atomic<size_t> count{0};
};

KvStore::KvStore(KvLimits limits) : impl_(std::make_shared<Impl>(limits)) {}

Status KvStore::Put(std::string_view key, std::string_view value, uint64_t* version) {
  VIRGA_RETURN_IF_ERROR(impl_->CheckKey(key));
  VIRGA_RETURN_IF_ERROR(impl_->CheckValue(key, value.size()));
  Stripe& s = impl_->StripeFor(key);
  std::unique_lock lock(s.mu);
  return impl_->Write(s, s.map.find(key), key, value, version);
}

Status KvStore::Get(std::string_view key, std::string* value, uint64_t* version) const {
  const Stripe& s = impl_->StripeFor(key);
  std::shared_lock lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return Status::NotFound(fmt::format("kv key {} not found", Quote(key)));
  if (value != nullptr) value->assign(it->second.value);
  if (version != nullptr) *version = it->second.version;
  return Status::OK();
}

std::vector<std::optional<std::string>> KvStore::MultiGet(std::span<const std::string> keys) const {
  std::vector<std::optional<std::string>> out(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const Stripe& s = impl_->StripeFor(keys[i]);
    std::shared_lock lock(s.mu);
    auto it = s.map.find(keys[i]);
    if (it != s.map.end()) out[i] = it->second.value;
  }
  return out;
}

bool KvStore::Delete(std::string_view key) {
  Stripe& s = impl_->StripeFor(key);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) return false;
  impl_->total_bytes.fetch_sub(it->first.size() + it->second.value.size(), std::memory_order_relaxed);
  impl_->count.fetch_sub(1, std::memory_order_relaxed);
  s.map.erase(it);
  return true;
}

Result<bool> KvStore::CompareAndSwap(std::string_view key, uint64_t expected_version,
                                     std::string_view value, uint64_t* current) {
  VIRGA_RETURN_IF_ERROR(impl_->CheckKey(key));
  VIRGA_RETURN_IF_ERROR(impl_->CheckValue(key, value.size()));
  Stripe& s = impl_->StripeFor(key);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(key);
  const uint64_t now = it == s.map.end() ? 0 : it->second.version;
  if (current != nullptr) *current = now;
  if (now != expected_version) return false;
  VIRGA_RETURN_IF_ERROR(impl_->Write(s, it, key, value, current));
  return true;
}

Status KvStore::AddFloats(std::string_view key, std::span<const float> delta,
                          std::vector<float>* result) {
  VIRGA_RETURN_IF_ERROR(impl_->CheckKey(key));
  const uint64_t bytes = uint64_t{delta.size()} * 4;
  VIRGA_RETURN_IF_ERROR(impl_->CheckValue(key, bytes));
  Stripe& s = impl_->StripeFor(key);
  std::unique_lock lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end()) {
    std::string fresh(bytes, '\0');
    for (size_t i = 0; i < delta.size(); ++i) StoreF32(&fresh[4 * i], delta[i]);
    VIRGA_RETURN_IF_ERROR(impl_->Write(s, it, key, fresh, nullptr));
  } else {
    std::string& v = it->second.value;
    if (v.size() != bytes) {
      return Status::InvalidArgument(fmt::format(
          "kv key {}: AddFloats size mismatch: stored value is {} bytes ({} floats), delta is {} floats",
          Quote(key), v.size(), v.size() / 4, delta.size()));
    }
    for (size_t i = 0; i < delta.size(); ++i) StoreF32(&v[4 * i], LoadF32(&v[4 * i]) + delta[i]);
    ++it->second.version;
  }
  if (result != nullptr) {
    const std::string& v = s.map.find(key)->second.value;
    result->resize(delta.size());
    for (size_t i = 0; i < delta.size(); ++i) (*result)[i] = LoadF32(&v[4 * i]);
  }
  return Status::OK();
}

std::vector<std::string> KvStore::List(std::string_view prefix) const {
  std::vector<std::string> keys;
  for (const Stripe& s : impl_->stripes) {
    std::shared_lock lock(s.mu);
    for (const auto& [k, e] : s.map) {
      if (k.starts_with(prefix)) keys.push_back(k);
    }
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

uint64_t KvStore::total_bytes() const { return impl_->total_bytes.load(std::memory_order_relaxed); }
size_t KvStore::size() const { return impl_->count.load(std::memory_order_relaxed); }

void KvStore::Serialize(std::string* out) const {
  // Stripes are always locked in index order, so taking them all is deadlock-free.
  std::array<std::shared_lock<std::shared_mutex>, kStripes> locks;
  for (size_t i = 0; i < kStripes; ++i) locks[i] = std::shared_lock(impl_->stripes[i].mu);
  std::vector<const Map::value_type*> entries;
  uint64_t bytes = 4 + 4 + 8 + 8;
  for (const Stripe& s : impl_->stripes) {
    for (const auto& kv : s.map) {
      entries.push_back(&kv);
      bytes += 4 + kv.first.size() + 8 + 8 + kv.second.value.size();
    }
  }
  std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
  out->clear();
  out->reserve(bytes);
  PutU32(out, kMagic);
  PutU32(out, kFormat);
  PutU64(out, entries.size());
  for (const auto* kv : entries) {
    PutU32(out, static_cast<uint32_t>(kv->first.size()));
    out->append(kv->first);
    PutU64(out, kv->second.version);
    PutU64(out, kv->second.value.size());
    out->append(kv->second.value);
  }
  PutU64(out, XXH3_64bits(out->data(), out->size()));
}

Status KvStore::Restore(std::string_view bytes, std::string_view source) {
  auto corrupt = [&](std::string_view what) {
    return Status::Corruption(fmt::format("{}: kv snapshot: {}", source, what));
  };
  if (bytes.size() < 4 + 4 + 8 + 8) return corrupt(fmt::format("truncated ({} bytes)", bytes.size()));
  std::string_view body;
  if (!coding::VerifyChecksumTrailer(bytes, &body)) return corrupt("checksum mismatch");

  Reader r(body);
  uint32_t magic = 0, format = 0;
  uint64_t n = 0;
  r.U32(&magic);
  r.U32(&format);
  r.U64(&n);
  if (magic != kMagic) return corrupt("bad magic");
  if (format != kFormat) return corrupt(fmt::format("unknown format version {}", format));
  if (n > r.remaining() / kMinEntryBytes) return corrupt(fmt::format("entry count {} exceeds the data", n));

  std::array<Map, kStripes> maps;
  uint64_t total = 0;
  std::string_view prev;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t key_len = 0;
    uint64_t version = 0, value_len = 0;
    std::string_view key, value;
    if (!r.U32(&key_len) || !r.Bytes(key_len, &key) || !r.U64(&version) || !r.U64(&value_len) ||
        !r.Bytes(value_len, &value)) {
      return corrupt(fmt::format("entry {} truncated", i));
    }
    if (key.empty() || version == 0) return corrupt(fmt::format("entry {}: empty key or version 0", i));
    if (i > 0 && key <= prev) return corrupt(fmt::format("entry {}: keys unsorted or duplicated", i));
    prev = key;
    Status st = impl_->CheckKey(key);
    if (st.ok()) st = impl_->CheckValue(key, value.size());
    total += key.size() + value.size();
    if (st.ok() && total > impl_->limits.max_total_bytes) {
      st = Status::ResourceExhausted(fmt::format("kv key {}: snapshot exceeds max_total_bytes {}",
                                                 Quote(key), impl_->limits.max_total_bytes));
    }
    VIRGA_RETURN_IF_ERROR(st.WithContext(source));
    maps[StripeOf(key)].emplace(std::string(key), Entry{std::string(value), version});
  }
  if (r.remaining() != 0) return corrupt(fmt::format("{} trailing bytes", r.remaining()));

  std::array<std::unique_lock<std::shared_mutex>, kStripes> locks;
  for (size_t i = 0; i < kStripes; ++i) locks[i] = std::unique_lock(impl_->stripes[i].mu);
  for (size_t i = 0; i < kStripes; ++i) impl_->stripes[i].map.swap(maps[i]);
  impl_->total_bytes.store(total, std::memory_order_relaxed);
  impl_->count.store(n, std::memory_order_relaxed);
  return Status::OK();
}

}  // namespace virga::ps
