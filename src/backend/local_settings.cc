// The local backend's entry in the backend registry: its settings and how
// they fill LocalBackendOptions (include/virga/backend.h).
#include <unistd.h>

#include <sstream>

#include "backend/backend_registry.h"

namespace virga::backend {
namespace {

constexpr BackendSetting kSettings[] = {
    {"worker_binary", "VIRGA_BINARY",
     "the virga executable each function runs (default: this program)"},
    {"worker_prefix", "",
     "command words run before it, space-separated, e.g. \"taskset -c 0\" (default: none)"},
    {"work_dir", "", "directory for the functions' payload and output files (default: a temp dir)"},
    {"memory_cap", "",
     "enforce the function memory cap as RLIMIT_AS: true | false (default: true, false in "
     "sanitizer builds)"},
    {"seed", "", "seed of the random start delays; 0 = from the clock (default: 0)"},
};

Status BadValue(const std::string& name, const std::string& value, std::string_view expected) {
  return Status::InvalidArgument("local backend setting '" + name + "': '" + value + "' is not " +
                                 std::string(expected));
}

Result<bool> ParseBool(const std::string& name, const std::string& value) {
  if (value == "true" || value == "1" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "no") return false;
  return BadValue(name, value, "true or false");
}

std::string SelfExecutable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

Result<LocalBackendOptions> OptionsFrom(const Settings& settings) {
  LocalBackendOptions o;
  std::string binary;
  std::vector<std::string> prefix;
  for (const auto& [name, value] : settings) {
    if (name == "worker_binary") {
      binary = value;
    } else if (name == "worker_prefix") {
      std::istringstream words(value);
      for (std::string w; words >> w;) prefix.push_back(w);
    } else if (name == "work_dir") {
      o.work_dir = value;
    } else if (name == "memory_cap") {
      VIRGA_ASSIGN_OR_RETURN(o.enforce_memory_cap, ParseBool(name, value));
    } else if (name == "seed") {
      VIRGA_ASSIGN_OR_RETURN(o.seed, ParseSettingU64("local", name, value));
    }
  }
  if (binary.empty()) binary = SelfExecutable();
  o.worker_args.clear();
  if (prefix.empty()) {
    o.worker_binary = std::move(binary);
  } else {
    // The prefix is a command of its own: it runs the binary as an argument.
    o.worker_binary = prefix.front();
    o.worker_args.assign(prefix.begin() + 1, prefix.end());
    o.worker_args.push_back(std::move(binary));
  }
  o.worker_args.push_back("worker");
  return o;
}

}  // namespace

extern const BackendType kLocalBackend = {
    {"local", "each function is a process on this machine, with function-like limits", kSettings},
    [](const Settings& settings) { return OptionsFrom(settings).status(); },
    [](const Settings& settings) -> Result<std::unique_ptr<ComputeBackend>> {
      VIRGA_ASSIGN_OR_RETURN(LocalBackendOptions o, OptionsFrom(settings));
      return MakeLocalBackend(o);
    },
};

}  // namespace virga::backend
