// The task functions of the stages, each defined in the file of its stage and
// registered by one line in stage_tasks.cc. Not public API.
#pragma once

#include <nlohmann/json.hpp>

#include "stage/stage_runner.h"

namespace virga::stage {

using TaskResult = Result<nlohmann::json>;
using Json = nlohmann::json;

TaskResult RunIngestPart(const TaskContext& ctx, const Json& args, const Json& task);  // stage_ingest.cc
TaskResult RunNormalizeStats(const TaskContext& ctx, const Json& args, const Json& task);      // stage_normalize.cc
TaskResult RunStatsReduce(const TaskContext& ctx, const Json& args, const Json& task);         // stage_normalize.cc
TaskResult RunNormalizeTransform(const TaskContext& ctx, const Json& args, const Json& task);  // stage_normalize.cc
TaskResult RunScore(const TaskContext& ctx, const Json& args, const Json& task);               // stage_score.cc

}  // namespace virga::stage
