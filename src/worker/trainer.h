// Trainer: the worker's training loop over the partitions of its leased
// items.
//
// Per minibatch: KeyMap -> pull the weights of its distinct keys ->
// Model::Gradient -> push. Pipelined: the next minibatch's pull is sent
// before the current gradient is computed (at most one pull in flight), so
// its round trip overlaps the compute. The pipeline reaches across an item's
// end only when the iterator has the next partition ready (the iterator
// keeps the previous partition's views valid, keep_previous): the next
// item's first pull then travels while the last minibatch of this item is
// computed, and this item is finished (its pushes flushed, its <job>/acks
// element added, its lease acked) right after its last push, as before. When
// the next partition is not ready the item is finished first, so a worker
// waiting for more work (or a slow fetch) holds no finished item. Two items
// are live at most: the one being finished and the next (items_). With
// staleness 0 the pull follows the push instead (a pull sent before this
// worker's own push could never see the version the clock requires).
//
// Bounded staleness (payload.staleness = s >= 0): a minibatch's weights are
// used only if the table version v >= workers * (c - s), c = this worker's
// iterations + floor(v0 / workers) (v0 = the version of its first pull);
// otherwise it re-pulls after a short sleep. After 1 s it gives up (counted
// in stale_timeouts): the clock is rebased to v / workers and it runs freely
// until a pull shows that others push again.
//
// Local steps (payload.local_steps = K > 1, asynchronous only): a turn is a
// round of up to K minibatches of one item. Its keys are mapped once, the
// rows of all of them pulled once with their optimizer state (PULL_STATE)
// into a Replica, the K minibatches trained one after another on the
// replica (the worker applies the table's optimizer after each, exactly as
// the server would), and the change pushed once (PUSH_DELTA, counted as K
// steps). One worker computes what per-minibatch pushes would; workers see
// each other's updates once per round. Within an item the next round's pull
// is sent before this round is computed (so the server serves it meanwhile):
// it cannot see this round's push, so this round's delta is added to it on
// arrival (Replica::AddDeltaOf), and a worker always trains on its own
// updates.
// A worker's rounds start short and double (1, 2, 4, ... up to K minibatches):
// when training starts every worker takes its largest steps from the same
// zero rows, and K of them each, added up over many workers, overshoot the
// hot keys (measured: 8 workers at K = 128 behind a 60 MB/s link went from
// logloss 0.69 to 1.23 at the first evaluation; ramped, they do not).
// Times and counts stay per minibatch (a round's turn is recorded as K
// minibatches of a K-th of it each).
//
// Not thread-safe: the training thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/key_map.h"
#include "ps/replica.h"
#include "worker/send_schedule.h"
#include "virga/model.h"
#include "virga/prefetch_iterator.h"
#include "virga/ps_client.h"
#include "virga/worker.h"
#include "worker/control.h"
#include "worker/iteration_stats.h"
#include "worker/work_ledger.h"

namespace virga::worker {

class Trainer {
 public:
  // `function_id` names the live stats key; `faults` counts retried server
  // calls (shared with the lease thread).
  Trainer(const WorkerPayload& payload, const Model& model, PsClient* client, Control* control,
          WorkLedger* ledger, std::atomic<uint64_t>* faults, uint64_t function_id);

  // Trains on the iterator's partitions (fetched with minibatch_rows = 0)
  // until it ends or a stop; returns why it stopped. On return nothing is
  // in flight; leases not yet finished are still in the ledger.
  StopReason Run(PrefetchIterator* it);
  // The message of a kError stop.
  const std::string& error() const { return error_; }

  // Adds this trainer's counts and times to *result.
  void Fill(WorkerResult* result) const;

  // Called about once a second for the live stats JSON published under
  // <job>/fn/<id> (best effort); unset: nothing is published.
  void set_live_stats(std::function<std::string()> f) { live_stats_ = std::move(f); }

 private:
  // Time spent in one turn of the loop, by part.
  struct Turn {
    Clock::duration data_wait{}, pull{}, compute{}, push{};
  };
  // A leased item being trained on (or finished).
  struct Item {
    std::optional<LeasedWork> work;
    bool tainted = false;  // a push of it may be lost: release instead of ack
  };
  struct Batch {
    RowBlockView rows;
    Item* item = nullptr;  // whose rows these are
    KeyMap keys;
    std::vector<float> weights;
    bool last_in_item = false;
    bool pull_sent = false;  // a pipelined pull is in flight for it
    // Local steps: its rows, and whether its pull left before the previous
    // round's push (which its replica then gets from that round).
    ps::Replica replica;
    bool before_prev_push = false;
  };
  struct Cursor {
    RowBlockView partition;
    uint64_t pos = 0, end = 0;  // rows of the item still to train on
    Item* item = nullptr;       // the item they belong to
  };

  // Cuts the next minibatch, maps its keys and starts its pull (held for the
  // next request with `hold`, see SendSchedule). `early`: sent before the
  // current batch's push.
  Result<bool> Advance(Batch* b, Turn* t, bool early, bool hold = false);
  Result<bool> NextItem(Turn* t);
  Status AwaitWeights(Batch* b, Turn* t);
  Status PullNow(Batch* b, uint64_t* version);
  Status StartPull(Batch* b, bool hold);
  void ComputeLocal(Batch* b, Turn* t);
  uint32_t RoundSteps(const Batch& b) const;
  Status BoundStaleness(Batch* b, uint64_t version);
  void Compute(Batch* b, Turn* t);
  Status Push(Batch* b, Turn* t);
  Status FinishItem(Item* item, Turn* t);
  Status CompleteWork(const LeasedWork& w);
  // Completes the leased items of partitions the iterator skipped (empty),
  // seq in [from, to).
  Status CompleteSkipped(uint64_t from, uint64_t to);
  std::optional<StopReason> CheckControl();
  StopReason Loop();
  StopReason Finished();
  StopReason Fail(const Status& s);
  void Drain();
  size_t Floats(const Batch& b) const { return size_t{b.keys.num_slots()} * width_; }

  const WorkerPayload& payload_;
  const Model& model_;
  PsClient* const client_;
  Control* const control_;
  WorkLedger* const ledger_;
  std::atomic<uint64_t>* const faults_;
  const uint32_t width_;
  const std::string acks_key_, stop_key_, kill_key_, stats_key_;
  const Clock::duration renew_every_;  // how often a held lease is renewed
  const bool local_;  // local steps (payload.local_steps > 1)
  const bool pipelined_;
  SendSchedule schedule_;  // when a pipelined pull is sent

  PrefetchIterator* it_ = nullptr;
  Minibatch minibatch_;
  Batch batches_[2];
  int cur_ = 0;
  Cursor cursor_;
  Item items_[2];
  std::vector<float> grads_;
  // Local steps: the slots a minibatch touched, each once; a round's keys'
  // slots in the previous round (for AddDeltaOf).
  DistinctSlots distinct_;
  std::vector<uint32_t> prev_slot_;
  uint64_t pulled_version_ = 0;
  uint64_t round_steps_ = 1;  // the next round's steps, doubling up to local_steps
  std::vector<float> one_hot_;  // payload.items floats, all 0 between acks
  bool pull_in_flight_ = false;
  std::string error_;

  // Bounded staleness.
  bool have_base_ = false;
  int64_t clock_base_ = 0;
  bool free_running_ = false;
  uint64_t free_version_ = 0, free_pushes_ = 0;

  // Control cadence.
  Clock::time_point next_stop_check_, next_renewal_, next_publish_;
  std::function<std::string()> live_stats_;

  // Counts.
  IterationStats stats_;
  uint64_t iterations_ = 0, samples_ = 0;
  double loss_ = 0;
  std::vector<uint64_t> epoch_samples_;
  std::vector<double> epoch_loss_;
  uint64_t acked_ = 0, released_ = 0, lost_ = 0, stale_waits_ = 0, stale_timeouts_ = 0;
  uint64_t pulls_early_ = 0, pulls_with_push_ = 0;
  Clock::time_point started_;
};

}  // namespace virga::worker
