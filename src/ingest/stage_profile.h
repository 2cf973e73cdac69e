// ProfileStages: the ingest's stages run one after another on the calling
// thread, each timed alone, for `virga bench ingest`. Ingest overlaps them on
// its threads; this shows what each one costs, hence which bounds the
// pipeline on one core. It writes the same partitions, statistics and
// manifest as Ingest, minus the label summary, and without Ingest's checks:
// no skip mode, no existing-dataset check, no cleanup after a failure.
#pragma once

#include <cstdint>

#include "virga/ingest.h"
#include "virga/object_store.h"
#include "virga/status.h"

namespace virga::ingest_internal {

struct StageCost {
  double cpu = 0;   // seconds of the calling thread's CPU, user + kernel
  double wall = 0;  // seconds
};

struct StageProfile {
  StageCost read;      // LineReader alone, over every input (a pass of its own)
  StageCost parse;     // parse and split, without the read
  StageCost stats;     // feature statistics of the train split
  StageCost encode;    // partition encoding (codec paused as Ingest does)
  StageCost put;       // partition Puts
  StageCost manifest;  // numeric statistics out of the accumulator + WriteManifest
  uint64_t rows = 0;
  double cpu() const {
    return read.cpu + parse.cpu + stats.cpu + encode.cpu + put.cpu + manifest.cpu;
  }
};

Result<StageProfile> ProfileStages(ObjectStore& store, const IngestOptions& options);

}  // namespace virga::ingest_internal
