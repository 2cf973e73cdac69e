// The driver and the function side of a stage's tasks (include/virga/stage.h).
// Not public API.
//
// Payload of a stage function (`virga worker --payload`, or a Lambda event's
// payload), told apart from a training worker's by its "stage" field:
//   {"stage": "<task kind>", "job": "<stage job id>", "servers": ["host:port"],
//    "token": "...", "store": "<store URI>", "args": {<the kind's common arguments>},
//    "lease_ms": N}
// Queue items (queue "<job>.tasks"): "<task index> <task JSON object>".
// Results (KV "<job>/task/<index>"): {"ok": <the task's result JSON>} or
// {"error": "<message>", "code": "<status code name>"}.
// A function prints a WorkerResult JSON line when it ends (end_reason done,
// stopped, killed, lifetime, duplicate or "error: ..."; items_acked = tasks
// it finished) and publishes the same as its live stats every second, as a
// training worker does, so every backend tracks it the same way.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/stage.h"
#include "virga/status.h"

namespace virga::stage {

// What a task runs with.
struct TaskContext {
  std::shared_ptr<ObjectStore> store;  // the payload's store
  std::string job;                     // the stage job id
  uint64_t index = 0;                  // the task's index
};

// A task kind: one registry line in stage_tasks.cc, its function in the file
// of its stage. `run` returns the result JSON, or an error that fails the
// stage (its message names the input).
struct TaskKind {
  std::string_view name;
  Result<nlohmann::json> (*run)(const TaskContext& ctx, const nlohmann::json& args,
                                const nlohmann::json& task);
};
std::span<const TaskKind> TaskKinds();

// Runs `tasks` of `kind` on functions of the stage's backend and returns
// their results, in task order. `what` names the step in progress reports
// and errors ("ingest", "normalize statistics").
Result<std::vector<nlohmann::json>> RunTasks(const StageOptions& stage, const std::string& store_uri,
                                             std::string_view kind, std::string_view what,
                                             const nlohmann::json& args,
                                             const std::vector<nlohmann::json>& tasks,
                                             StageStats* stats);

// The function side.
bool IsStagePayload(std::string_view text);
// Runs a stage function to its end; prints its WorkerResult JSON line on
// stdout; returns the process exit code (0 done/stopped/killed/duplicate,
// 1 error, 2 bad payload).
int RunStageFunction(std::string_view text, std::string_view source);

// Helpers for the stages.
// "datasets/<name>/_stage/<job>/" : scratch objects of a stage writing
// dataset <name> (removed at its end, and with the dataset's objects when it fails).
std::string ScratchPrefix(std::string_view dataset, std::string_view job);
// A fresh stage job id ("stage-<utc>-<hex>").
std::string NewStageJobId();
// Partition lists in task results: [[key, rows, nnz, bytes], ...].
nlohmann::json PartsToJson(const std::vector<PartitionInfo>& parts);
std::vector<PartitionInfo> PartsFromJson(const nlohmann::json& a);  // throws json::exception

// The name of the backend a stage runs on.
std::string BackendName(const StageOptions& stage);
// InvalidArgument when a backend other than `local` would be given a local
// path (`what` names it: "input 'x'").
Status CheckReachable(std::string_view backend, std::string_view path, std::string_view what);

}  // namespace virga::stage
