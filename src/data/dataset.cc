#include "virga/dataset.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <cstdio>

namespace virga {

Status ValidateDatasetName(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid dataset name '" + std::string(name) +
                                   "': " + std::string(why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 128) return bad("longer than 128 bytes");
  if (name.front() == '.') return bad("starts with '.'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return bad("only A-Z a-z 0-9 . _ - are allowed");
  }
  return Status::OK();
}

std::string ManifestKey(std::string_view dataset) {
  std::string key = "datasets/";
  key += dataset;
  key += "/manifest.json";
  return key;
}

std::string PartPartitionKey(std::string_view dataset, bool test, uint64_t part, uint64_t index) {
  char name[48];
  std::snprintf(name, sizeof name, "part-%05llu-%05llu", static_cast<unsigned long long>(part),
                static_cast<unsigned long long>(index));
  return "datasets/" + std::string(dataset) + (test ? "/test/" : "/train/") + name;
}

std::string PartitionKey(std::string_view dataset, bool test, uint64_t index) {
  char part[32];
  std::snprintf(part, sizeof part, "part-%05llu", static_cast<unsigned long long>(index));
  std::string key = "datasets/";
  key += dataset;
  key += test ? "/test/" : "/train/";
  key += part;
  return key;
}

double FeatureStat::variance() const {
  if (count == 0) return 0;
  const double m = mean();
  return std::max(0.0, sum_sq / count - m * m);
}

void FeatureStat::Merge(const FeatureStat& other) {
  if (other.count == 0) return;
  if (count == 0) {
    min = other.min;
    max = other.max;
  } else {
    min = std::min(min, other.min);
    max = std::max(max, other.max);
  }
  count += other.count;
  sum += other.sum;
  sum_sq += other.sum_sq;
}

namespace {

constexpr uint32_t kStatsMagic = 0x53464756;  // "VGFS"
constexpr uint32_t kStatsVersion = 1;

template <typename T>
void Append(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

// Layout: u32 magic, u32 version, u64 n, then n records of
// (u32 index, u32 pad, u64 count, f64 min, f64 max, f64 sum, f64 sum_sq),
// then u64 XXH3 of everything before it. Little-endian.
std::string EncodeFeatureStats(const std::vector<FeatureStat>& stats) {
  std::string out;
  out.reserve(24 + stats.size() * 48);
  Append(&out, kStatsMagic);
  Append(&out, kStatsVersion);
  Append(&out, uint64_t{stats.size()});
  for (const FeatureStat& s : stats) {
    Append(&out, s.index);
    Append(&out, uint32_t{0});
    Append(&out, s.count);
    Append(&out, s.min);
    Append(&out, s.max);
    Append(&out, s.sum);
    Append(&out, s.sum_sq);
  }
  Append(&out, uint64_t{XXH3_64bits(out.data(), out.size())});
  return out;
}

Result<std::vector<FeatureStat>> DecodeFeatureStats(std::string_view b, std::string_view key) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption(std::string(key) + ": feature statistics " + why);
  };
  if (b.size() < 24) return bad("truncated");
  uint32_t magic, version;
  uint64_t n, sum;
  std::memcpy(&magic, b.data(), 4);
  std::memcpy(&version, b.data() + 4, 4);
  std::memcpy(&n, b.data() + 8, 8);
  if (magic != kStatsMagic) return bad("have a bad magic number");
  if (version != kStatsVersion) return bad("have unsupported version " + std::to_string(version));
  if (n > (b.size() - 24) / 48 || b.size() != 24 + n * 48) return bad("have the wrong size");
  std::memcpy(&sum, b.data() + b.size() - 8, 8);
  if (sum != XXH3_64bits(b.data(), b.size() - 8)) return bad("fail their checksum");
  std::vector<FeatureStat> stats(n);
  const char* p = b.data() + 16;
  for (FeatureStat& s : stats) {
    std::memcpy(&s.index, p, 4);
    std::memcpy(&s.count, p + 8, 8);
    std::memcpy(&s.min, p + 16, 8);
    std::memcpy(&s.max, p + 24, 8);
    std::memcpy(&s.sum, p + 32, 8);
    std::memcpy(&s.sum_sq, p + 40, 8);
    p += 48;
  }
  return stats;
}

Status WriteManifest(ObjectStore& store, const Manifest& manifest) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(manifest.name));
  if (manifest.numeric_features.size() <= kInlineFeatureStats) {
    return store.Put(ManifestKey(manifest.name), ManifestToJson(manifest));
  }
  // Large statistics go to their own object, written before the manifest.
  const std::string stats_key = "datasets/" + manifest.name + "/feature-stats";
  VIRGA_RETURN_IF_ERROR(store.Put(stats_key, EncodeFeatureStats(manifest.numeric_features)));
  return store.Put(ManifestKey(manifest.name), ManifestToJson(manifest, stats_key));
}

Result<Manifest> ReadManifest(ObjectStore& store, std::string_view dataset) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(dataset));
  const std::string key = ManifestKey(dataset);
  std::string json;
  Status s = store.Get(key, &json);
  if (s.IsNotFound()) {
    return Status::NotFound("dataset '" + std::string(dataset) + "' not found in " + store.uri() +
                            " (no " + key + ")");
  }
  if (!s.ok()) return s.WithContext("reading manifest of dataset '" + std::string(dataset) + "'");
  VIRGA_ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(json, key));
  if (!m.numeric_features_key.empty()) {
    std::string bytes;
    VIRGA_RETURN_IF_ERROR(store.Get(m.numeric_features_key, &bytes)
                              .WithContext("manifest " + key + ": numeric_features_key"));
    VIRGA_ASSIGN_OR_RETURN(m.numeric_features, DecodeFeatureStats(bytes, m.numeric_features_key));
  }
  if (m.name != dataset) {
    return Status::Corruption("manifest " + key + ": field 'name': '" + m.name +
                              "' does not match dataset '" + std::string(dataset) + "'");
  }
  return m;
}

Result<std::vector<std::string>> ListDatasets(ObjectStore& store) {
  VIRGA_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, store.List("datasets/"));
  std::vector<std::string> names;
  constexpr std::string_view kManifest = "/manifest.json";
  for (const ObjectInfo& o : objects) {
    std::string_view key = o.key;
    key.remove_prefix(9);  // "datasets/"
    if (key.size() > kManifest.size() && key.ends_with(kManifest) &&
        key.find('/') == key.size() - kManifest.size()) {
      names.emplace_back(key.substr(0, key.size() - kManifest.size()));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<uint64_t> DeleteDataset(ObjectStore& store, std::string_view name) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(name));
  const std::string prefix = "datasets/" + std::string(name) + "/";
  VIRGA_ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, store.List(prefix));
  if (objects.empty()) {
    return Status::NotFound("dataset '" + std::string(name) + "' not found in " + store.uri());
  }
  uint64_t removed = 0;
  const std::string manifest = ManifestKey(name);
  for (const ObjectInfo& o : objects) {
    if (o.key != manifest) continue;
    VIRGA_RETURN_IF_ERROR(store.Delete(o.key));
    ++removed;
  }
  for (const ObjectInfo& o : objects) {
    if (o.key == manifest) continue;
    VIRGA_RETURN_IF_ERROR(store.Delete(o.key).WithContext("removing dataset '" + std::string(name) + "'"));
    ++removed;
  }
  return removed;
}

}  // namespace virga
