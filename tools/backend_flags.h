// The compute backend flags of every command that runs a job (train,
// search): --backend NAME, and for each registered backend each of its
// settings as --<backend>-<setting> (dashes for underscores), e.g.
// --local-worker-binary. They come from the backend registry, so a new
// backend brings its flags with it (include/virga/backend.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "virga/backend.h"

namespace virga::cli {

class BackendFlags {
 public:
  // Adds the flags to `cmd`. REQUIRES: this object outlives the parse.
  void Add(CLI::App* cmd);
  // The backend the flags choose and its settings, checked
  // (CheckBackendConfig). InvalidArgument for an unknown backend, a bad
  // setting, or a setting flag of a backend other than the chosen one.
  Result<BackendConfig> Config() const;

 private:
  struct Given {
    std::string flag, backend, setting, value;
  };
  std::string name_;  // --backend; empty: $VIRGA_BACKEND, else local
  std::vector<Given> given_;
};

}  // namespace virga::cli
