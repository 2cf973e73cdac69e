#include "worker/trainer.h"

#include <algorithm>

namespace virga::worker {
namespace {

constexpr auto kStopCheckEvery = std::chrono::milliseconds(200);
constexpr auto kPublishEvery = std::chrono::seconds(1);
constexpr auto kStaleGiveUp = std::chrono::seconds(1);
constexpr auto kStaleNapMin = std::chrono::microseconds(100);
constexpr auto kStaleNapMax = std::chrono::milliseconds(2);
static_assert(KeyMap::kAbsent == ps::Replica::kNoSlot, "KeyMap::Find's output feeds AddDeltaOf");

}  // namespace

Trainer::Trainer(const WorkerPayload& payload, const Model& model, PsClient* client,
                 Control* control, WorkLedger* ledger, std::atomic<uint64_t>* faults,
                 uint64_t function_id)
    : payload_(payload),
      model_(model),
      client_(client),
      control_(control),
      ledger_(ledger),
      faults_(faults),
      width_(model.width()),
      acks_key_(payload.job + "/acks"),
      stop_key_(JobStopKey(payload.job)),
      kill_key_(FunctionKillKey(payload.job, function_id)),
      stats_key_(FunctionStatsKey(payload.job, function_id)),
      renew_every_(std::chrono::milliseconds(std::max<uint32_t>(payload.lease_ms / 3, 1))),
      local_(payload.local_steps > 1 && payload.staleness == -1),
      pipelined_(payload.staleness != 0),
      // A round is long: a held pull would only delay it.
      schedule_(local_ || payload.send_schedule == "early" ? SendSchedule(SendSchedule::Mode::kEarly)
                : payload.send_schedule == "with_push" ? SendSchedule(SendSchedule::Mode::kWithPush)
                                                       : SendSchedule()),
      one_hot_(payload.items, 0.0f),
      epoch_samples_(payload.epochs, 0),
      epoch_loss_(payload.epochs, 0.0) {
  started_ = Clock::now();
  next_stop_check_ = started_ + kStopCheckEvery;
  next_renewal_ = started_;
  next_publish_ = started_ + kPublishEvery;
}

StopReason Trainer::Run(PrefetchIterator* it) {
  it_ = it;
  const StopReason why = Loop();
  Drain();
  return why;
}

StopReason Trainer::Loop() {
  Turn t;
  Clock::time_point turn_start = Clock::now();
  Result<bool> more = Advance(&batches_[cur_], &t, /*early=*/false);
  if (!more.ok()) return Fail(more.status());
  if (!*more) return Finished();
  for (;;) {
    Batch& b = batches_[cur_];
    Status s = AwaitWeights(&b, &t);
    if (!s.ok()) return Fail(s);
    // The next minibatch's pull travels during this compute: within an item,
    // and across its end when the next partition is at hand (see trainer.h).
    const bool early = pipelined_ && (!b.last_in_item || it_->Ready());
    bool have_next = false;
    const SendSchedule::Mode mode = schedule_.mode();
    if (early) {
      more = Advance(&batches_[1 - cur_], &t, /*early=*/true, mode == SendSchedule::Mode::kWithPush);
      if (!more.ok()) return Fail(more.status());
      have_next = *more;
    }
    Compute(&b, &t);
    s = Push(&b, &t);
    if (s.ok() && b.last_in_item) s = FinishItem(b.item, &t);
    const Clock::time_point now = Clock::now();
    if (const uint32_t k = local_ ? RoundSteps(b) : 1; k == 1) {
      stats_.Record(t.data_wait, t.pull, t.compute, t.push, now - turn_start);
    } else {  // a round: k minibatches of a k-th of its time each
      for (uint32_t i = 0; i < k; ++i)
        stats_.Record(t.data_wait / k, t.pull / k, t.compute / k, t.push / k, (now - turn_start) / k);
    }
    if (early) {
      schedule_.Record(now - turn_start);
      ++(mode == SendSchedule::Mode::kWithPush ? pulls_with_push_ : pulls_early_);
    }
    turn_start = now;
    t = Turn{};
    if (!s.ok()) return Fail(s);
    if (std::optional<StopReason> stop = CheckControl()) return *stop;
    if (!early) {
      more = Advance(&batches_[1 - cur_], &t, /*early=*/false);
      if (!more.ok()) return Fail(more.status());
      have_next = *more;
    }
    if (!have_next) return Finished();
    cur_ = 1 - cur_;
  }
}

Result<bool> Trainer::Advance(Batch* b, Turn* t, bool early, bool hold) {
  while (cursor_.pos == cursor_.end) {
    VIRGA_ASSIGN_OR_RETURN(bool got, NextItem(t));
    if (!got) return false;
  }
  uint64_t steps = 1;
  if (local_) {  // rounds of 1, 2, 4, ... minibatches up to local_steps (see trainer.h)
    steps = std::min<uint64_t>(payload_.local_steps, round_steps_);
    round_steps_ = std::min<uint64_t>(2 * round_steps_, payload_.local_steps);
  }
  const uint64_t span = uint64_t{payload_.minibatch} * steps;
  const uint64_t end = std::min<uint64_t>(cursor_.pos + span, cursor_.end);
  b->rows = cursor_.partition.Slice(cursor_.pos, end);
  b->item = cursor_.item;
  b->last_in_item = end == cursor_.end;
  cursor_.pos = end;
  const Clock::time_point t0 = Clock::now();
  b->keys.Build(b->rows);
  if (local_) {
    b->replica.Reset(payload_.optimizer, width_, ModelInfoOf(model_.kind()).init, b->keys.num_slots());
    b->before_prev_push = early && batches_[cur_].keys.num_slots() > 0;
  } else {
    const size_t n = Floats(*b);
    if (b->weights.size() < n) b->weights.resize(n);  // grows to the largest minibatch, then stays
  }
  const Clock::time_point t1 = Clock::now();
  t->compute += t1 - t0;
  Status s = StartPull(b, hold);
  b->pull_sent = pull_in_flight_ = s.ok();
  if (!s.ok()) faults_->fetch_add(1);  // AwaitWeights pulls again, with retries
  t->pull += Clock::now() - t1;
  return true;
}

Status Trainer::StartPull(Batch* b, bool hold) {
  if (local_) return client_->StartPullState(payload_.table, b->keys.keys(), b->replica.rows(), hold);
  return client_->StartPull(payload_.table, b->keys.keys(),
                            std::span<float>(b->weights.data(), Floats(*b)), hold);
}

uint32_t Trainer::RoundSteps(const Batch& b) const {
  return static_cast<uint32_t>((b.rows.rows() + payload_.minibatch - 1) / payload_.minibatch);
}

Result<bool> Trainer::NextItem(Turn* t) {
  for (;;) {
    const Clock::time_point t0 = Clock::now();
    Result<bool> got = it_->Next(&minibatch_);
    t->data_wait += Clock::now() - t0;
    if (!got.ok()) return got.status();
    // Leased items whose partitions the iterator skipped were empty: done.
    // Those before the item still being finished (if any) were done when it
    // was taken.
    Item* live = cursor_.item != nullptr && cursor_.item->work ? cursor_.item : nullptr;
    const uint64_t from = live != nullptr ? live->work->seq + 1 : 0;
    VIRGA_RETURN_IF_ERROR(CompleteSkipped(from, *got ? minibatch_.partition : UINT64_MAX));
    if (!*got) return false;
    std::optional<LeasedWork> w = ledger_->Get(minibatch_.partition);
    if (!w || w->item.key != *minibatch_.key) {
      return Status::Internal("partition #" + std::to_string(minibatch_.partition) + " (" +
                              *minibatch_.key + ") does not match a leased item");
    }
    const uint64_t rows = minibatch_.rows.rows();
    cursor_.partition = minibatch_.rows;  // whole partitions: minibatch_rows = 0
    cursor_.pos = std::min(w->item.begin, rows);
    cursor_.end = std::min(w->item.end, rows);
    // The slot the live item (if any) does not hold: at most two are live.
    Item* item = live == &items_[0] ? &items_[1] : &items_[0];
    item->tainted = false;
    item->work = std::move(w);
    cursor_.item = item;
    if (cursor_.pos < cursor_.end) return true;
    VIRGA_RETURN_IF_ERROR(CompleteWork(*item->work));  // no rows in its range
    ledger_->Remove(item->work->seq);
    item->work.reset();
    cursor_.item = live;
  }
}

Status Trainer::AwaitWeights(Batch* b, Turn* t) {
  const Clock::time_point t0 = Clock::now();
  uint64_t version = 0;
  Status s = Status::Unavailable("pull not sent");
  if (b->pull_sent) {
    s = client_->FinishPull(&version);
    if (!s.ok()) faults_->fetch_add(1);
  }
  b->pull_sent = pull_in_flight_ = false;
  if (!s.ok()) {
    s = PullNow(b, &version);
    b->before_prev_push = false;  // pulled after every push of this worker
  }
  if (s.ok() && payload_.staleness >= 0) s = BoundStaleness(b, version);
  if (s.ok() && local_) {
    if (b->before_prev_push) {
      const Batch& prev = batches_[1 - cur_];
      const std::span<const uint64_t> keys = b->keys.keys();
      if (prev_slot_.size() < keys.size()) prev_slot_.resize(keys.size());
      const std::span<uint32_t> prev_slot(prev_slot_.data(), keys.size());
      prev.keys.Find(keys, prev_slot);  // kAbsent is Replica::kNoSlot
      b->replica.AddDeltaOf(prev.replica, prev_slot);
    }
    pulled_version_ = version;
    b->replica.Load(ScheduledLearningRate(payload_.optimizer, version));
  }
  t->pull += Clock::now() - t0;
  return s;
}

Status Trainer::PullNow(Batch* b, uint64_t* version) {
  if (local_) {
    return control_->Retry(
        [&] {
          VIRGA_RETURN_IF_ERROR(StartPull(b, /*hold=*/false));
          return client_->FinishPull(version);
        },
        faults_);
  }
  const std::span<float> out(b->weights.data(), Floats(*b));
  return control_->Retry([&] { return client_->Pull(payload_.table, b->keys.keys(), out, version); },
                         faults_);
}

Status Trainer::BoundStaleness(Batch* b, uint64_t version) {
  const auto workers = static_cast<int64_t>(payload_.workers);
  const auto slack = static_cast<int64_t>(payload_.staleness);
  auto v = static_cast<int64_t>(version);
  const auto done = static_cast<int64_t>(iterations_);
  if (!have_base_) {
    clock_base_ = v / workers;
    have_base_ = true;
  }
  if (free_running_) {
    // Still alone if the version grew by no more than this worker's pushes.
    if (v - static_cast<int64_t>(free_version_) <= done - static_cast<int64_t>(free_pushes_))
      return Status::OK();
    free_running_ = false;
    clock_base_ = v / workers - done;
  }
  const int64_t need = workers * (done + clock_base_ - slack);
  if (v >= need) return Status::OK();
  ++stale_waits_;
  const Clock::time_point give_up = Clock::now() + kStaleGiveUp;
  Clock::duration nap = kStaleNapMin;
  while (v < need) {
    if (Clock::now() >= give_up) {  // the others may have no work left: run on
      ++stale_timeouts_;
      free_running_ = true;
      free_version_ = static_cast<uint64_t>(v);
      free_pushes_ = iterations_;
      clock_base_ = v / workers - done;
      return Status::OK();
    }
    if (!control_->SleepFor(nap)) return Status::Cancelled("stopping during a staleness wait");
    nap = std::min<Clock::duration>(2 * nap, kStaleNapMax);
    VIRGA_RETURN_IF_ERROR(PullNow(b, &version));
    v = static_cast<int64_t>(version);
  }
  return Status::OK();
}

void Trainer::Compute(Batch* b, Turn* t) {
  if (local_) return ComputeLocal(b, t);
  const Clock::time_point t0 = Clock::now();
  const size_t n = Floats(*b);
  if (grads_.size() < n) grads_.resize(n);
  std::fill_n(grads_.begin(), n, 0.0f);
  const double loss = model_.Gradient(b->keys.Batch(b->rows),
                                      std::span<const float>(b->weights.data(), n),
                                      std::span<float>(grads_.data(), n));
  t->compute += Clock::now() - t0;
  const uint64_t rows = b->rows.rows();
  const uint32_t epoch = b->item->work->item.epoch;
  samples_ += rows;
  loss_ += loss;
  epoch_samples_[epoch] += rows;
  epoch_loss_[epoch] += loss;
}

void Trainer::ComputeLocal(Batch* b, Turn* t) {
  const Clock::time_point t0 = Clock::now();
  const uint32_t slots = b->keys.num_slots();
  const size_t n = Floats(*b);
  if (grads_.size() < n) grads_.resize(n);
  std::fill_n(grads_.begin(), n, 0.0f);  // Step zeroes what it applies
  const std::span<float> grads(grads_.data(), n);
  const std::span<const uint32_t> slot = b->keys.slots();
  const uint32_t first_entry = b->rows.offsets[0];
  const uint64_t rows = b->rows.rows();
  double loss = 0;
  uint64_t step = 0;
  for (uint64_t at = 0; at < rows; at += payload_.minibatch, ++step) {
    const RowBlockView mb = b->rows.Slice(at, std::min<uint64_t>(at + payload_.minibatch, rows));
    const SlotBatch batch{mb, slot.subspan(mb.offsets[0] - first_entry, mb.nnz()),
                          KeyMap::kBiasSlot, slots};
    loss += model_.Gradient(batch, b->replica.weights(), grads);
    // The minibatch's distinct slots, the bias first (as a push lists them).
    const std::span<const uint32_t> touched = distinct_.Of(batch.slot, KeyMap::kBiasSlot, slots);
    b->replica.Step(touched, grads,
                    ScheduledLearningRate(payload_.optimizer, pulled_version_ + step));
  }
  t->compute += Clock::now() - t0;
  const uint32_t epoch = b->item->work->item.epoch;
  samples_ += rows;
  loss_ += loss;
  epoch_samples_[epoch] += rows;
  epoch_loss_[epoch] += loss;
  iterations_ += step;
}

Status Trainer::Push(Batch* b, Turn* t) {
  const Clock::time_point t0 = Clock::now();
  Status s;
  if (local_) {
    // Held within an item: it leaves with the next round's pull, one write.
    s = client_->StartPushDelta(payload_.table, b->keys.keys(), b->replica.Delta(), RoundSteps(*b));
  } else {
    s = client_->StartPush(payload_.table, b->keys.keys(),
                           std::span<const float>(grads_.data(), Floats(*b)));
    ++iterations_;
  }
  t->push += Clock::now() - t0;
  if (s.ok()) return s;
  // The gradient may be lost: the item is redone rather than acked.
  b->item->tainted = true;
  faults_->fetch_add(1);
  return IsTransient(s) ? Status::OK() : s;
}

Status Trainer::FinishItem(Item* item, Turn* t) {
  const Clock::time_point t0 = Clock::now();
  // Every push of the item applied (or failed); a pull of the next item
  // sent before them is collected on the way, into its batch.
  Status s = client_->Flush();
  if (!s.ok()) {
    if (!IsTransient(s)) return s;
    faults_->fetch_add(1);
    item->tainted = true;
  }
  const LeasedWork& w = *item->work;
  if (item->tainted) {
    s = control_->Retry([&] { return client_->Release(payload_.queue, w.lease_id); }, faults_);
    if (s.ok() || s.IsNotFound()) {
      ++released_;
      s = Status::OK();
    }
  } else {
    s = CompleteWork(w);
  }
  if (s.ok()) {
    ledger_->Remove(w.seq);
    item->work.reset();
  }
  t->push += Clock::now() - t0;
  return s;
}

Status Trainer::CompleteWork(const LeasedWork& w) {
  if (!one_hot_.empty()) {  // counted before the ack (worker.h)
    one_hot_[w.item.index] = 1.0f;
    Status s = control_->Retry([&] { return client_->AddFloats(acks_key_, one_hot_); }, faults_);
    one_hot_[w.item.index] = 0.0f;
    if (!s.ok()) return s.WithContext("adding to " + acks_key_);
  }
  Status s = control_->Retry([&] { return client_->Ack(payload_.queue, w.lease_id); }, faults_);
  if (s.ok()) {
    ++acked_;
  } else if (s.IsNotFound()) {
    ++lost_;  // the lease expired: the item went back to the queue
  } else {
    return s.WithContext("acking an item of " + payload_.queue);
  }
  return Status::OK();
}

Status Trainer::CompleteSkipped(uint64_t from, uint64_t to) {
  while (std::optional<LeasedWork> w = ledger_->OldestIn(from, to)) {
    VIRGA_RETURN_IF_ERROR(CompleteWork(*w));
    ledger_->Remove(w->seq);
  }
  return Status::OK();
}

std::optional<StopReason> Trainer::CheckControl() {
  const Clock::time_point now = Clock::now();
  if (control_->stop_requested()) {
    if (control_->reason() == StopReason::kError) error_ = control_->error();
    return control_->reason();
  }
  if (control_->Expired(now)) {
    control_->RequestStop(StopReason::kLifetime);
    return StopReason::kLifetime;
  }
  if (now >= next_stop_check_) {
    next_stop_check_ = now + kStopCheckEvery;
    bool fault = false;
    const StopReason why = CheckStopKeys(client_, stop_key_, kill_key_, &fault);
    if (why != StopReason::kNone) {
      control_->RequestStop(why);
      return why;
    }
    if (fault) faults_->fetch_add(1);
  }
  if (now >= next_renewal_) {
    next_renewal_ = now + std::min<Clock::duration>(kStopCheckEvery, renew_every_ / 2);
    for (uint64_t lease : ledger_->DueForRenewal(now, std::chrono::duration_cast<std::chrono::milliseconds>(renew_every_))) {
      // NotFound: the lease already expired; its ack will count as lost.
      Status s = client_->Renew(payload_.queue, lease, std::chrono::milliseconds(payload_.lease_ms));
      if (!s.ok() && !s.IsNotFound()) faults_->fetch_add(1);
    }
  }
  if (live_stats_ && now >= next_publish_) {
    next_publish_ = now + kPublishEvery;
    if (!client_->Put(stats_key_, live_stats_()).ok()) faults_->fetch_add(1);
  }
  return std::nullopt;
}

StopReason Trainer::Finished() {
  const StopReason r = control_->reason();
  if (r == StopReason::kError) error_ = control_->error();
  return r == StopReason::kNone ? StopReason::kIdle : r;
}

StopReason Trainer::Fail(const Status& s) {
  // A call cut short by a stop (lifetime, stop key) is not an error.
  if (control_->stop_requested() || control_->Expired()) {
    if (control_->reason() == StopReason::kNone) control_->RequestStop(StopReason::kLifetime);
    if (control_->reason() == StopReason::kError) error_ = control_->error();
    return control_->reason();
  }
  error_ = s.ToString();
  control_->RequestStop(StopReason::kError, error_);
  return StopReason::kError;
}

void Trainer::Drain() {
  if (pull_in_flight_) (void)client_->FinishPull();
  pull_in_flight_ = false;
  batches_[0].pull_sent = batches_[1].pull_sent = false;
  (void)client_->Flush();
}

void Trainer::Fill(WorkerResult* r) const {
  r->samples = samples_;
  r->items_acked = acked_;
  r->items_released = released_;
  r->items_lost = lost_;
  r->train_loss = samples_ > 0 ? loss_ / static_cast<double>(samples_) : 0.0;
  r->epoch_samples = epoch_samples_;
  r->epoch_loss = epoch_loss_;
  r->stale_waits = stale_waits_;
  r->stale_timeouts = stale_timeouts_;
  r->pulls_early = pulls_early_;
  r->pulls_with_push = pulls_with_push_;
  r->times = stats_.Summary();
}

}  // namespace virga::worker
