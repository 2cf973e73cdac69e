// ChannelJob: training with no parameter server (TrainOptions::channel
// "store" or "redis"; design in docs/channel.md).
//
// Stateless worker functions (the same `virga worker` processes, launched on
// the same backend with the same limits) exchange the model and gradients
// only through storage, in synchronous rounds. Worker slot s of n owns 1/n of
// every epoch's items and chunk s of the dense model vector; each round it
// reads the model, computes the gradient of one item, writes it split in n
// chunks, then reduces chunk s of every slot's gradient, applies the
// optimizer to it (state also in storage) and writes chunk s of the next
// round's model. Every wait has a deadline, so a lost worker never stalls a
// round; its item is redone later, and its respawned function resumes from
// the cursor it keeps in storage.
//
// The scheduler side mirrors TrainJob: it keeps `workers` functions alive
// (one per slot), evaluates the newest complete model every
// eval_interval_seconds, stops on epochs / target loss / time limit /
// divergence / Kill(), registers in the job registry and returns the same
// TrainResult (so TrainResultToJson gives the same JSON).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "virga/status.h"
#include "virga/train.h"

namespace virga::channel {

class ChannelJob {
 public:
  // Validates the options (channel "store" or "redis"; a redis channel_uri),
  // the datasets and the storage; writes round 0. Nothing runs until Run().
  static Result<std::unique_ptr<ChannelJob>> Create(TrainOptions options);
  ~ChannelJob();  // kills its functions and deletes the job's channel objects

  // Runs to the end on the calling thread; `on_progress` after every evaluation.
  Result<TrainResult> Run(std::function<void(const TrainProgress&)> on_progress = {});
  // Asks Run() to stop (state "killed"). Safe from any thread.
  void Kill();
  TrainProgress progress() const;
  std::vector<HistoryPoint> history() const;
  // After Run(): writes the newest complete model to a model file.
  Status SaveModel(const std::string& path);
  const TrainOptions& options() const;

 private:
  struct Impl;
  explicit ChannelJob(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when `options.channel` names a storage channel (not "ps");
// InvalidArgument for an unknown channel name.
Result<bool> IsStorageChannel(const TrainOptions& options);

// `virga worker`: whether a payload file's JSON is a channel worker's (run
// with ChannelPayloadFromJson + RunChannelWorker, channel_worker.h).
bool IsChannelPayload(const std::string& json);

}  // namespace virga::channel
