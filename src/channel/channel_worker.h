// The channel worker: one stateless function for one slot of a channel job
// (docs/channel.md, "A round").
//
// Per round r, slot s of n:
//   1. read every chunk of model r (waiting for it; pull time) and learn from
//      their inclusion lists whether its item of round r - 1 was summed into
//      every chunk: if so it is done, else it goes on the redo list
//   2. take its next item (redo list first), write its cursor (round, item)
//   3. compute the item's gradient with model r, minibatch by minibatch
//      (data wait, compute), write it as n sparse chunks (push)
//   4. reduce chunk s: sum every slot's chunk-s gradient that arrives before
//      the round deadline, apply the optimizer with the state of round r,
//      write state and model chunk s of round r + 1 (push)
//   5. wait for every chunk of round r + 1; a chunk missing past twice the
//      deadline is reduced by this worker itself (a backup reducer)
// It stops at the job's stop key, before its lifetime ends, or on a storage
// fault that lasts past its retry budget (end_reason "error: ...").
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "channel/channel_store.h"
#include "channel/records.h"
#include "virga/optimizer.h"
#include "virga/status.h"
#include "virga/worker.h"

namespace virga::channel {

struct ChannelPayload {
  std::string mode;         // "store" | "redis"
  std::string channel_uri;  // redis://host:port (redis)
  std::string job;
  std::string store;        // object store of the dataset (and of the channel, mode "store")
  std::string dataset;
  std::string model = "lr";
  uint32_t slot = 0;        // this function's slot, < workers
  uint32_t workers = 1;     // slots = model chunks
  uint32_t epochs = 1;
  uint32_t minibatch = 20;  // rows per gradient evaluation inside an item
  uint32_t rows_per_item = 200;  // rows per round per slot
  uint64_t seed = 1;
  uint64_t dim = 0;         // dense model size: num_features + 1 (the bias is last)
  OptimizerConfig optimizer;
  uint32_t round_timeout_ms = 3000;  // wait for other slots' gradients this long
  uint32_t keep_rounds = 8;          // rounds of objects kept before deletion
  uint32_t max_fault_ms = 30'000;    // give up after storage faults lasting this long
  uint32_t lifetime_ms = 0;          // 0: from $VIRGA_FUNCTION_LIFETIME_MS
};

std::string ChannelPayloadToJson(const ChannelPayload& p);
// InvalidArgument naming the field ("channel payload: field 'slot': ...").
Result<ChannelPayload> ChannelPayloadFromJson(std::string_view json);

// For tests: called at named points of a round ("cursor", "grads", "reducing",
// "reduced");
// returning true makes the worker return at once, as if killed there.
using CrashHook = std::function<bool(std::string_view point, uint64_t round)>;

struct ChannelWorkerOptions {
  std::unique_ptr<ChannelStore> channel;  // null: opened from the payload
  const std::atomic<bool>* stop = nullptr;  // in-process stop (tests); the stop key works too
  CrashHook crash;
  uint64_t function_id = 0;  // 0: $VIRGA_FUNCTION_ID
};

// Writes round 0 of a job: zero weights and the optimizer's initial state,
// chunk by chunk, and the round hint "0".
Status WriteInitialRound(ChannelStore& channel, const Layout& layout, const OptimizerConfig& optimizer);

// Runs one slot's function to its end. Returns an error for setup faults
// (bad payload values, unknown dataset, model/dimension mismatch);
// faults while running end it with end_reason "error: ...".
Result<WorkerResult> RunChannelWorker(const ChannelPayload& payload, ChannelWorkerOptions options = {});

}  // namespace virga::channel
