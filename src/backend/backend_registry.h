// The table of compute backends by name (include/virga/backend.h, "Backends
// by name"). Not public API.
//
// Adding a backend: a file of its own defines its BackendType (name, help,
// settings, and how its settings become its options struct and a backend);
// one line below declares it and one line in kBackends (backend_registry.cc)
// registers it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "virga/backend.h"

namespace virga::backend {

using Settings = std::map<std::string, std::string>;

struct BackendType {
  BackendDescription description;
  // Parses `settings` into the backend's options and checks them, creating
  // nothing. Every name is one of description.settings (the registry checks
  // that and adds the values of environment variables first).
  // InvalidArgument naming the setting and its bad value.
  Status (*check)(const Settings& settings);
  // Creates the backend from `settings` (as for check).
  Result<std::unique_ptr<ComputeBackend>> (*make)(const Settings& settings);
};

// A setting's unsigned integer value in [min, max]: InvalidArgument "<backend>
// backend setting '<name>': '<value>' is not an integer in [min, max]" (or "an
// unsigned integer" without bounds).
Result<uint64_t> ParseSettingU64(std::string_view backend, const std::string& name,
                                 const std::string& value, uint64_t min = 0,
                                 uint64_t max = UINT64_MAX);

// The backends, each defined in its own file.
extern const BackendType kLocalBackend;   // local_settings.cc
extern const BackendType kLambdaBackend;  // lambda_settings.cc

}  // namespace virga::backend
