// The table of task kinds (stage_runner.h): a new kind of task is a function
// in the file of its stage and one line here.
#include "stage/task_kinds.h"

namespace virga::stage {
namespace {

constexpr TaskKind kTaskKinds[] = {
    {"ingest_part", RunIngestPart},
    {"normalize_stats", RunNormalizeStats},
    {"stats_reduce", RunStatsReduce},
    {"normalize_transform", RunNormalizeTransform},
    {"score", RunScore},
};

}  // namespace

std::span<const TaskKind> TaskKinds() { return kTaskKinds; }

}  // namespace virga::stage
