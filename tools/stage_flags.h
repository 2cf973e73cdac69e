// The flags of the commands that can run as functions (ingest, normalize,
// predict): the backend flags (backend_flags.h) plus --functions,
// --function-memory, --function-timeout, --server-bind, --server-advertise.
// The command runs on functions when --backend, a backend setting or
// --functions is given, or $VIRGA_BACKEND is set; otherwise in this process.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "tools/backend_flags.h"
#include "virga/stage.h"

namespace virga::cli {

class StageFlags {
 public:
  // `ingest`: also --part-mb.
  void Add(CLI::App* cmd, bool ingest);
  bool OnFunctions() const;
  // The stage options the flags give, with a progress line on stderr.
  Result<StageOptions> Options(const std::string& command) const;
  // Prints the stats line ("virga ingest: 12 tasks ... on 4 functions ...").
  static void PrintStats(const std::string& command, const StageStats& stats);

 private:
  BackendFlags backend_;
  CLI::Option* backend_opt_ = nullptr;
  uint32_t functions_ = 0;
  uint64_t memory_mb_ = 1769;
  double timeout_s_ = 900;
  uint64_t part_mb_ = 128;
  uint32_t partitions_per_task_ = 16;
  std::string bind_ = "127.0.0.1", advertise_;
  CLI::App* cmd_ = nullptr;
};

}  // namespace virga::cli
