// MakeBackend: compute backends chosen by name through one table.
#include "backend/backend_registry.h"

#include <charconv>
#include <cstdlib>
#include <vector>

namespace virga {
namespace {

using backend::BackendType;

// The registry: one line per backend.
constexpr const BackendType* kBackends[] = {
    &backend::kLocalBackend,
    &backend::kLambdaBackend,
};

std::string KnownBackends() {
  std::string known;
  for (const BackendType* b : kBackends) {
    if (!known.empty()) known += ", ";
    known += b->description.name;
  }
  return known;
}

std::string SettingNames(const BackendDescription& d) {
  std::string names;
  for (const BackendSetting& s : d.settings) {
    if (!names.empty()) names += ", ";
    names += s.name;
  }
  return names.empty() ? "none" : names;
}

Result<const BackendType*> Find(const BackendConfig& config) {
  const std::string name = config.name.empty() ? DefaultBackendName() : config.name;
  for (const BackendType* b : kBackends) {
    if (b->description.name == name) return b;
  }
  return Status::InvalidArgument("unknown compute backend '" + name + "'" +
                                 (config.name.empty() ? " (from $VIRGA_BACKEND)" : "") +
                                 " (known: " + KnownBackends() + ")");
}

// `config`'s settings checked against the backend's, plus the values of the
// environment variables of those not given.
Result<backend::Settings> Resolve(const BackendType& type, const BackendConfig& config) {
  const BackendDescription& d = type.description;
  for (const auto& [name, value] : config.settings) {
    bool known = false;
    for (const BackendSetting& s : d.settings) known = known || s.name == name;
    if (!known) {
      return Status::InvalidArgument("compute backend '" + std::string(d.name) +
                                     "' has no setting '" + name +
                                     "' (its settings: " + SettingNames(d) + ")");
    }
  }
  backend::Settings out = config.settings;
  for (const BackendSetting& s : d.settings) {
    if (s.env.empty() || out.count(std::string(s.name)) != 0) continue;
    const char* value = std::getenv(std::string(s.env).c_str());
    if (value != nullptr && *value != '\0') out[std::string(s.name)] = value;
  }
  return out;
}

}  // namespace

std::span<const BackendDescription> RegisteredBackends() {
  static const std::vector<BackendDescription> list = [] {
    std::vector<BackendDescription> v;
    for (const BackendType* b : kBackends) v.push_back(b->description);
    return v;
  }();
  return list;
}

std::string DefaultBackendName() {
  const char* env = std::getenv("VIRGA_BACKEND");
  return env != nullptr && *env != '\0' ? env : "local";
}

Status CheckBackendConfig(const BackendConfig& config) {
  VIRGA_ASSIGN_OR_RETURN(const BackendType* type, Find(config));
  VIRGA_ASSIGN_OR_RETURN(backend::Settings settings, Resolve(*type, config));
  return type->check(settings);
}

Result<std::unique_ptr<ComputeBackend>> MakeBackend(const BackendConfig& config) {
  VIRGA_ASSIGN_OR_RETURN(const BackendType* type, Find(config));
  VIRGA_ASSIGN_OR_RETURN(backend::Settings settings, Resolve(*type, config));
  VIRGA_RETURN_IF_ERROR(type->check(settings));
  return type->make(settings);
}

}  // namespace virga

namespace virga::backend {

Result<uint64_t> ParseSettingU64(std::string_view backend, const std::string& name,
                                 const std::string& value, uint64_t min, uint64_t max) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || v < min ||
      v > max) {
    const std::string expected =
        min == 0 && max == UINT64_MAX
            ? "an unsigned integer"
            : "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    return Status::InvalidArgument(std::string(backend) + " backend setting '" + name + "': '" +
                                   value + "' is not " + expected);
  }
  return v;
}

}  // namespace virga::backend
