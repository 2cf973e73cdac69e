// `virga worker --payload FILE`: one training function (virga/worker.h).
//
// Prints the WorkerResult JSON as the last line of stdout. Exit codes: 0 the
// worker ran (done, lifetime, stopped), 1 it failed (a setup error, or
// end_reason "error: ..." with its result still printed), 2 bad payload,
// kExitOutOfMemory (86) an allocation failed anywhere (e.g. under the
// backend's memory cap), so the backend can report it as such.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <new>
#include <sstream>

#include "src/channel/channel_job.h"
#include "src/channel/channel_worker.h"
#include "src/stage/stage_runner.h"
#include "tools/commands.h"
#include "virga/backend.h"
#include "virga/worker.h"

namespace virga::cli {
namespace {

// Any thread's failed allocation ends the process with the OOM exit code
// (an exception escaping a background thread would abort instead).
[[noreturn]] void OutOfMemory() {
  static const char kMsg[] = "virga worker: out of memory\n";
  (void)!::write(2, kMsg, sizeof(kMsg) - 1);
  std::_Exit(kExitOutOfMemory);
}

// Prints the result JSON and returns the exit code (header comment).
int Report(const Result<WorkerResult>& result) {
  if (!result.ok()) {
    std::fprintf(stderr, "virga worker: %s\n", result.status().ToString().c_str());
    return result.status().IsInvalidArgument() ? 2 : 1;
  }
  std::printf("%s\n", ResultToJson(*result).c_str());
  std::fflush(stdout);
  if (result->end_reason.rfind("error", 0) == 0) {
    std::fprintf(stderr, "virga worker: %s\n", result->end_reason.c_str());
    return 1;
  }
  return 0;
}

int BadPayload(std::string_view source, const Status& s) {
  std::fprintf(stderr, "virga worker: %.*s: %s\n", static_cast<int>(source.size()), source.data(),
               s.message().c_str());
  return 2;
}

}  // namespace

int RunWorkerPayload(std::string_view text, std::string_view source) {
  std::set_new_handler(OutOfMemory);
  try {
    // A stage function (ingest, normalize, predict on functions): src/stage.
    if (stage::IsStagePayload(text)) return stage::RunStageFunction(text, source);
    // A storage-channel worker (no parameter server): src/channel, docs/channel.md.
    if (channel::IsChannelPayload(std::string(text))) {
      auto payload = channel::ChannelPayloadFromJson(text);
      if (!payload.ok()) return BadPayload(source, payload.status());
      return Report(channel::RunChannelWorker(*payload));
    }
    Result<WorkerPayload> payload = PayloadFromJson(text);
    if (!payload.ok()) return BadPayload(source, payload.status());
    return Report(RunWorker(*payload));
  } catch (const std::bad_alloc&) {
    OutOfMemory();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "virga worker: internal error: %s\n", e.what());
    return 1;
  }
}

namespace {

int RunWorkerCommand(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "virga worker: cannot read payload file '%s'\n", path.c_str());
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  return RunWorkerPayload(text.str(), path);
}

}  // namespace

void RegisterWorker(CLI::App& app, int* exit_code) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("worker", "Run one training function (launched by the scheduler)");
  cmd->add_option("--payload", *path, "Worker payload JSON file")->required();
  cmd->callback([path, exit_code] { *exit_code = RunWorkerCommand(*path); });
}

}  // namespace virga::cli
