#include "tools/stage_flags.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace virga::cli {

void StageFlags::Add(CLI::App* cmd, bool ingest) {
  cmd_ = cmd;
  backend_.Add(cmd);
  const char* g = "Functions (run as functions of a compute backend)";
  cmd->add_option("--functions", functions_,
                  "Run on functions, at most this many at once (0: CPUs on local, 100 elsewhere)")
      ->group(g);
  cmd->add_option("--function-memory", memory_mb_, "Memory of each function, MB")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--function-timeout", timeout_s_, "Lifetime of each function, seconds")
      ->capture_default_str()
      ->group(g);
  if (ingest) {
    cmd->add_option("--part-mb", part_mb_,
                    "Input MB per function task (larger uncompressed files are cut into byte ranges)")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20))
        ->group(g);
  } else {
    cmd->add_option("--partitions-per-task", partitions_per_task_, "Partitions per function task")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1u << 20))
        ->group(g);
  }
  cmd->add_option("--server-bind", bind_, "Address the stage's control server listens on")
      ->capture_default_str()
      ->group(g);
  cmd->add_option("--server-advertise", advertise_,
                  "HOST[:PORT] functions reach the control server at (default: the bind address)")
      ->group(g);
}

bool StageFlags::OnFunctions() const {
  if (cmd_ == nullptr) return false;
  if (cmd_->count("--backend") > 0 || cmd_->count("--functions") > 0) return true;
  const char* env = std::getenv("VIRGA_BACKEND");
  if (env != nullptr && *env != '\0') return true;
  for (const CLI::Option* o : cmd_->get_options()) {
    if (o->get_group() == "Backend settings" && o->count() > 0) return true;
  }
  return false;
}

Result<StageOptions> StageFlags::Options(const std::string& command) const {
  StageOptions o;
  VIRGA_ASSIGN_OR_RETURN(o.backend, backend_.Config());
  o.max_functions = functions_;
  o.limits.memory_mb = memory_mb_;
  o.limits.lifetime = std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000));
  o.part_bytes = part_mb_ << 20;
  o.partitions_per_task = partitions_per_task_;
  o.server_bind = bind_;
  o.server_advertise = advertise_;
  const bool tty = ::isatty(2) != 0;
  o.on_progress = [command, tty, last = std::chrono::steady_clock::time_point{}](
                      const StageProgress& p) mutable {
    const auto now = std::chrono::steady_clock::now();
    const bool end = p.tasks_done == p.tasks;
    if (!tty && !end && now - last < std::chrono::seconds(5)) return;
    last = now;
    std::fprintf(stderr, "%svirga %s: %s: %llu/%llu tasks, %u functions running, %.1f s%s",
                 tty ? "\r" : "", command.c_str(), p.stage.c_str(),
                 static_cast<unsigned long long>(p.tasks_done),
                 static_cast<unsigned long long>(p.tasks), p.functions_live, p.seconds,
                 tty && !end ? "   " : "\n");
  };
  return o;
}

void StageFlags::PrintStats(const std::string& command, const StageStats& stats) {
  std::fprintf(stderr, "virga %s: %s\n", command.c_str(), stats.Summary().c_str());
}

}  // namespace virga::cli
