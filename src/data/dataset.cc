#include "virga/dataset.h"

#include <algorithm>
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

Status WriteManifest(ObjectStore& store, const Manifest& manifest) {
  VIRGA_RETURN_IF_ERROR(ValidateDatasetName(manifest.name));
  return store.Put(ManifestKey(manifest.name), ManifestToJson(manifest));
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
  if (m.name != dataset) {
    return Status::Corruption("manifest " + key + ": field 'name': '" + m.name +
                              "' does not match dataset '" + std::string(dataset) + "'");
  }
  return m;
}

}  // namespace virga
