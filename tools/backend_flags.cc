#include "tools/backend_flags.h"

namespace virga::cli {

void BackendFlags::Add(CLI::App* cmd) {
  std::string names;
  for (const BackendDescription& b : RegisteredBackends()) {
    names += (names.empty() ? "" : " | ") + std::string(b.name);
  }
  cmd->add_option("--backend", name_,
                  "Compute backend running the worker functions: " + names +
                      " (default: $VIRGA_BACKEND, else local)");
  for (const BackendDescription& b : RegisteredBackends()) {
    for (const BackendSetting& s : b.settings) {
      std::string flag = "--" + std::string(b.name) + "-" + std::string(s.name);
      for (char& c : flag) c = c == '_' ? '-' : c;
      std::string help = "[" + std::string(b.name) + "] " + std::string(s.help);
      if (!s.env.empty()) help += "; env " + std::string(s.env);
      Given g{flag, std::string(b.name), std::string(s.name), ""};
      cmd->add_option_function<std::string>(
             flag,
             [this, g](const std::string& v) mutable {
               g.value = v;
               given_.push_back(g);
             },
             help)
          ->group("Backend settings");
    }
  }
}

Result<BackendConfig> BackendFlags::Config() const {
  BackendConfig config;
  config.name = name_;
  const std::string chosen = name_.empty() ? DefaultBackendName() : name_;
  for (const Given& g : given_) {
    if (g.backend != chosen) {
      return Status::InvalidArgument(g.flag + " is a setting of backend '" + g.backend +
                                     "', but the job runs on '" + chosen + "' (--backend " +
                                     g.backend + " to use it)");
    }
    config.settings[g.setting] = g.value;
  }
  VIRGA_RETURN_IF_ERROR(CheckBackendConfig(config));
  return config;
}

}  // namespace virga::cli
