// RunChannelWorker: the round loop of one slot (see channel_worker.h).
#include "channel/channel_worker.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>

#include "channel/plan.h"
#include "channel/records.h"
#include "channel/reduce.h"
#include "models/key_map.h"
#include "virga/dataset.h"
#include "virga/model.h"
#include "virga/partition.h"
#include "virga/prefetch_iterator.h"
#include "worker/iteration_stats.h"

namespace virga::channel {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint64_t EnvNumber(const char* name) {
  const char* v = std::getenv(name);
  uint64_t x = 0;
  if (v == nullptr) return 0;
  auto [p, ec] = std::from_chars(v, v + std::strlen(v), x);
  return ec == std::errc() && *p == '\0' ? x : 0;
}

bool IsTransient(const Status& s) {
  using C = Status::Code;
  return s.code() == C::kUnavailable || s.code() == C::kDeadlineExceeded || s.code() == C::kIOError;
}

// Thrown inside a round to end the function (crash hook, stop, fault);
// caught once in Run.
struct Abort {
  std::string reason;
};

class SlotWorker {
 public:
  SlotWorker(const ChannelPayload& p, ChannelWorkerOptions o)
      : p_(p), o_(std::move(o)), layout_(p.job, p.dim, p.workers), reducer_(p.optimizer, MaxChunk()) {}

  Status Setup();
  WorkerResult Run();

 private:
  uint64_t MaxChunk() const {
    uint64_t m = 0;
    for (uint32_t c = 0; c < layout_.chunks(); ++c) m = std::max(m, layout_.ChunkSize(c));
    return m;
  }
  // Storage calls, retried on transient faults until max_fault_ms; other
  // faults (and exhausted retries) abort the function.
  template <typename F>
  Status Call(F&& f);
  void Check(const Status& s) {
    if (!s.ok()) throw Abort{"error: " + s.ToString()};
  }
  void MaybeCrash(std::string_view point, uint64_t round) {
    if (o_.crash && o_.crash(point, round)) throw Abort{"crashed"};
  }
  bool StopRequested();
  bool Sleep(Clock::duration d);

  bool ModelComplete(uint64_t round);
  // Reads every chunk of `round` into dense; NotFound if one is absent.
  Status ReadModel(uint64_t round, std::vector<float>* dense, std::vector<ModelChunkHeader>* headers);
  uint64_t StartRound();
  void ResolveInflight(uint64_t round);
  bool IncludedEverywhere(const std::vector<ModelChunkHeader>& headers, uint32_t pos) const;
  uint32_t TakeItem();
  void TrainItem(uint32_t pos, Clock::duration* data_wait, Clock::duration* compute);
  Status ItemRows(uint32_t pos, RowBlockView* rows, Clock::duration* data_wait);
  void WriteGrads(uint64_t round, uint32_t pos);
  bool Reduce(uint64_t round, uint32_t chunk, Clock::time_point deadline);
  bool AwaitNext(uint64_t round, Clock::time_point deadline);

  const ChannelPayload& p_;
  ChannelWorkerOptions o_;
  Layout layout_;
  ChunkReducer reducer_;
  std::shared_ptr<ObjectStore> data_;
  Manifest manifest_;
  ChannelPlan plan_;
  const std::vector<ChannelItem>* items_ = nullptr;
  std::unique_ptr<Model> model_;
  Clock::time_point started_, stop_at_;

  // Data: the slot's partitions in list order (one run per partition visit).
  std::vector<uint32_t> run_of_;  // list position -> run index
  std::unique_ptr<PrefetchIterator> it_;
  uint32_t run_base_ = 0;         // run of the iterator's first partition
  int64_t run_now_ = -1;          // run of the partition in mb_
  Minibatch mb_;
  PartitionBuffer side_;          // a redone item's partition
  std::string side_bytes_;

  // Round state.
  Cursor cursor_;
  double inflight_loss_ = 0;
  bool retake_ = false;      // redo the cursor's item in the cursor's round (resumed mid-round)
  bool sequential_ = false;  // the item taken is the next of the list (not a redo)
  std::vector<float> w_;              // model of the current round
  std::vector<float> scratch_;        // an older round's model (rare: resume checks)
  std::vector<ModelChunkHeader> headers_, scratch_headers_;
  std::vector<float> acc_;            // this round's gradient, dense
  std::vector<uint8_t> mark_;
  std::vector<uint32_t> touched_;
  std::vector<uint32_t> gidx_;
  std::vector<float> gval_;
  KeyMap keys_;
  std::vector<float> weights_, grads_, state_;
  std::string buf_;
  GradHeader gh_;
  std::vector<Inclusion> included_;
  std::vector<uint8_t> got_;

  // Results.
  worker::IterationStats stats_;
  uint64_t samples_ = 0, items_done_ = 0, faults_ = 0;
  double loss_ = 0;
  uint32_t item_rows_ = 0;
  double item_loss_ = 0;
};

template <typename F>
Status SlotWorker::Call(F&& f) {
  Status s = f();
  if (s.ok() || !IsTransient(s)) return s;
  const Clock::time_point give_up = Clock::now() + milliseconds(p_.max_fault_ms);
  auto backoff = milliseconds(5);
  while (!s.ok() && IsTransient(s) && Clock::now() < give_up) {
    ++faults_;
    if (!Sleep(backoff)) return s;
    backoff = std::min(backoff * 2, milliseconds(500));
    s = f();
  }
  return s;
}

bool SlotWorker::StopRequested() {
  if (o_.stop != nullptr && o_.stop->load()) return true;
  auto e = o_.channel->Exists(layout_.Stop());
  return e.ok() && *e;
}

bool SlotWorker::Sleep(Clock::duration d) {
  std::this_thread::sleep_for(d);
  return !(o_.stop != nullptr && o_.stop->load());
}

Status SlotWorker::Setup() {
  started_ = Clock::now();
  const uint64_t lifetime = p_.lifetime_ms ? p_.lifetime_ms : EnvNumber("VIRGA_FUNCTION_LIFETIME_MS");
  const uint64_t margin = std::min<uint64_t>(lifetime / 10, 2000);
  stop_at_ = lifetime ? started_ + milliseconds(lifetime - margin) : Clock::time_point::max();
  if (!o_.channel) {
    VIRGA_ASSIGN_OR_RETURN(o_.channel, OpenChannel(p_.mode, p_.store, p_.channel_uri));
  }
  VIRGA_ASSIGN_OR_RETURN(data_, ObjectStore::Open(p_.store));
  VIRGA_ASSIGN_OR_RETURN(manifest_, ReadManifest(*data_, p_.dataset));
  if (manifest_.num_features + 1 != p_.dim) {
    return Status::InvalidArgument("channel worker: dataset '" + p_.dataset + "' has " +
                                   std::to_string(manifest_.num_features) + " features, payload dim " +
                                   std::to_string(p_.dim));
  }
  VIRGA_ASSIGN_OR_RETURN(ModelKind kind, ParseModelName(p_.model));
  if (!ModelInfoOf(kind).channel_ok) {
    return Status::InvalidArgument("channel worker: model '" + p_.model +
                                   "' cannot run on a storage channel");
  }
  model_ = MakeModel(kind);
  plan_ = PlanChannel(manifest_.train, p_.epochs, p_.workers, p_.rows_per_item, p_.seed);
  items_ = &plan_.slots[p_.slot];
  run_of_.resize(items_->size());
  for (size_t i = 0; i < items_->size(); ++i) {
    const bool same = i > 0 && (*items_)[i].partition == (*items_)[i - 1].partition &&
                      (*items_)[i].epoch == (*items_)[i - 1].epoch;
    run_of_[i] = i == 0 ? 0 : run_of_[i - 1] + (same ? 0 : 1);
  }
  w_.assign(p_.dim, 0.0f);
  acc_.assign(p_.dim, 0.0f);
  mark_.assign(p_.dim, 0);
  headers_.resize(p_.workers);
  got_.resize(p_.workers);
  return Status::OK();
}

bool SlotWorker::ModelComplete(uint64_t round) {
  for (uint32_t c = 0; c < layout_.chunks(); ++c) {
    Result<bool> e = false;
    Check(Call([&] {
      e = o_.channel->Exists(layout_.Model(round, c));
      return e.status();
    }));
    if (!*e) return false;
  }
  return true;
}

Status SlotWorker::ReadModel(uint64_t round, std::vector<float>* dense,
                             std::vector<ModelChunkHeader>* headers) {
  headers->resize(layout_.chunks());
  for (uint32_t c = 0; c < layout_.chunks(); ++c) {
    const std::string key = layout_.Model(round, c);
    VIRGA_RETURN_IF_ERROR(Call([&] { return o_.channel->Get(key, &buf_); }));
    ModelChunkHeader& h = (*headers)[c];
    h.round = round;
    h.chunk = c;
    h.begin = layout_.ChunkBegin(c);
    h.size = layout_.ChunkSize(c);
    VIRGA_RETURN_IF_ERROR(DecodeModelChunk(buf_, key, &h, *dense));
  }
  return Status::OK();
}

// The newest round with a complete model, from the cursor and the
// scheduler's hint; waits for round 0 if the job has just started.
uint64_t SlotWorker::StartRound() {
  uint64_t hint = 0;
  std::string text;
  if (Call([&] { return o_.channel->Get(layout_.RoundHint(), &text); }).ok()) {
    (void)std::from_chars(text.data(), text.data() + text.size(), hint);
  }
  const Clock::time_point deadline = Clock::now() + milliseconds(p_.max_fault_ms);
  for (;;) {
    for (uint64_t from : {std::max(cursor_.round, hint), hint}) {
      if (!ModelComplete(from)) continue;
      uint64_t r = from;
      while (ModelComplete(r + 1)) ++r;
      return r;
    }
    if (StopRequested()) throw Abort{"stopped"};
    if (Clock::now() > deadline) throw Abort{"error: no complete model round found in " + o_.channel->Describe()};
    Sleep(milliseconds(10));
  }
}

bool SlotWorker::IncludedEverywhere(const std::vector<ModelChunkHeader>& headers, uint32_t pos) const {
  const Inclusion want{p_.slot, pos};
  for (const ModelChunkHeader& h : headers) {
    if (std::find(h.included.begin(), h.included.end(), want) == h.included.end()) return false;
  }
  return true;
}

// Decides the fate of the item taken in an earlier round from the inclusion
// lists of the round after it: done when every chunk summed its gradient,
// else redone later. `round`'s model is in w_/headers_.
void SlotWorker::ResolveInflight(uint64_t round) {
  const uint32_t pos = cursor_.inflight;
  retake_ = false;
  if (pos == kNoItem) return;
  if (cursor_.round == round) {
    // Resumed in the round the lost function was in: take the same item
    // again; its gradient objects are rewritten with the same values.
    retake_ = true;
    return;
  }
  bool included = false;
  if (cursor_.round + 1 == round) {
    included = IncludedEverywhere(headers_, pos);
  } else if (cursor_.round + 1 < round) {
    // Resumed (or fell behind): the round after the item's may still be kept.
    scratch_.resize(p_.dim);
    included = ReadModel(cursor_.round + 1, &scratch_, &scratch_headers_).ok() &&
               IncludedEverywhere(scratch_headers_, pos);
  }
  if (included) {
    if (cursor_.done[pos] < 255) ++cursor_.done[pos];
    const ChannelItem& it = (*items_)[pos];
    cursor_.samples += it.end - it.begin;
    cursor_.loss += inflight_loss_;
    ++items_done_;
  } else if (std::find(cursor_.redo.begin(), cursor_.redo.end(), pos) == cursor_.redo.end()) {
    cursor_.redo.push_back(pos);
  }
  cursor_.inflight = kNoItem;
  inflight_loss_ = 0;
}

uint32_t SlotWorker::TakeItem() {
  sequential_ = false;
  if (retake_) {
    retake_ = false;
    sequential_ = cursor_.inflight + 1 == cursor_.next;
    return cursor_.inflight;
  }
  // Skip items already done (a resumed cursor may list a redo that was applied).
  while (!cursor_.redo.empty()) {
    const uint32_t pos = cursor_.redo.front();
    cursor_.redo.erase(cursor_.redo.begin());
    if (cursor_.done[pos] == 0) return pos;
  }
  if (cursor_.next < items_->size()) {
    sequential_ = true;
    return cursor_.next++;
  }
  return kNoItem;
}

Status SlotWorker::ItemRows(uint32_t pos, RowBlockView* rows, Clock::duration* data_wait) {
  const ChannelItem& item = (*items_)[pos];
  const auto t0 = Clock::now();
  // In list order: the streaming iterator (started at the first such item).
  if (!it_ && sequential_) {
    std::vector<std::string> keys;
    run_base_ = run_of_[pos];
    for (size_t i = pos; i < items_->size(); ++i) {
      if (i == pos || run_of_[i] != run_of_[i - 1]) keys.push_back(manifest_.train[(*items_)[i].partition].key);
    }
    PrefetchOptions po;
    po.minibatch_rows = 0;  // whole partitions; buffers and fetches_in_flight as by default
    it_ = std::make_unique<PrefetchIterator>(data_, std::move(keys), po);
    run_now_ = static_cast<int64_t>(run_base_) - 1;
  }
  const int64_t run = run_of_[pos];
  if (it_ && (sequential_ ? run >= run_now_ : run == run_now_)) {
    while (run_now_ < run) {
      VIRGA_ASSIGN_OR_RETURN(bool more, it_->Next(&mb_));
      if (!more) return Status::Internal("channel worker: partition stream ended early");
      ++run_now_;
    }
    if (mb_.rows.rows() < item.end) {
      return Status::Corruption(*mb_.key + ": has " + std::to_string(mb_.rows.rows()) +
                                " rows, the manifest promised more");
    }
    *rows = mb_.rows.Slice(item.begin, item.end);
    *data_wait += Clock::now() - t0;
    return Status::OK();
  }
  // Out of order (a redo): fetch its partition directly.
  const std::string& key = manifest_.train[item.partition].key;
  VIRGA_RETURN_IF_ERROR(Call([&] { return data_->Get(key, &side_bytes_); }));
  VIRGA_RETURN_IF_ERROR(DecodePartition(side_bytes_, key, &side_));
  if (side_.view().rows() < item.end) return Status::Corruption(key + ": fewer rows than the manifest says");
  *rows = side_.view().Slice(item.begin, item.end);
  *data_wait += Clock::now() - t0;
  return Status::OK();
}

// The item's gradient with model w_: sum over its minibatches of the
// gradient of each minibatch's mean loss, into acc_ (touched_ lists the
// coordinates).
void SlotWorker::TrainItem(uint32_t pos, Clock::duration* data_wait, Clock::duration* compute) {
  RowBlockView rows;
  Check(ItemRows(pos, &rows, data_wait));
  const auto t0 = Clock::now();
  const uint64_t bias = p_.dim - 1;
  double loss = 0;
  for (size_t b = 0; b < rows.rows(); b += p_.minibatch) {
    const RowBlockView batch = rows.Slice(b, std::min<size_t>(rows.rows(), b + p_.minibatch));
    keys_.Build(batch);
    const auto keys = keys_.keys();
    if (weights_.size() < keys.size()) {
      weights_.resize(keys.size());
      grads_.resize(keys.size());
    }
    for (size_t k = 0; k < keys.size(); ++k) {
      const uint64_t i = keys[k] == kBiasKey ? bias : keys[k];
      if (i > bias) {
        Check(Status::Corruption("dataset '" + p_.dataset + "': feature " + std::to_string(keys[k]) +
                                 " >= its num_features " + std::to_string(bias)));
      }
      weights_[k] = w_[i];
      grads_[k] = 0.0f;
    }
    loss += model_->Gradient(keys_.Batch(batch), std::span<const float>(weights_.data(), keys.size()),
                             std::span<float>(grads_.data(), keys.size()));
    for (size_t k = 0; k < keys.size(); ++k) {
      const uint32_t i = static_cast<uint32_t>(keys[k] == kBiasKey ? bias : keys[k]);
      acc_[i] += grads_[k];
      if (!mark_[i]) {
        mark_[i] = 1;
        touched_.push_back(i);
      }
    }
  }
  item_rows_ = static_cast<uint32_t>(rows.rows());
  item_loss_ = loss;
  *compute += Clock::now() - t0;
}

// Writes this slot's gradient of `round` as one sparse object per chunk
// (empty ones too, so reducers need not wait for them) and clears acc_.
void SlotWorker::WriteGrads(uint64_t round, uint32_t pos) {
  std::sort(touched_.begin(), touched_.end());
  size_t k = 0;
  for (uint32_t c = 0; c < layout_.chunks(); ++c) {
    const uint64_t begin = layout_.ChunkBegin(c), end = begin + layout_.ChunkSize(c);
    gidx_.clear();
    gval_.clear();
    for (; k < touched_.size() && touched_[k] < end; ++k) {
      gidx_.push_back(static_cast<uint32_t>(touched_[k] - begin));
      gval_.push_back(acc_[touched_[k]]);
    }
    GradHeader h;
    h.round = round;
    h.chunk = c;
    h.slot = p_.slot;
    h.pos = pos;
    h.rows = pos == kNoItem ? 0 : item_rows_;
    h.loss = pos == kNoItem ? 0 : item_loss_;
    EncodeGrad(h, gidx_, gval_, &buf_);
    const std::string key = layout_.Grad(round, c, p_.slot);
    Check(Call([&] { return o_.channel->Put(key, buf_); }));
  }
  for (uint32_t i : touched_) {
    acc_[i] = 0.0f;
    mark_[i] = 0;
  }
  touched_.clear();
}

// Reduces chunk `chunk` of round `round` into round + 1, unless it exists.
// Waits for every slot's gradient until `deadline`, then goes on with those
// that came. w_ must hold model `round`. False when round `round` has been
// deleted already (this function fell keep_rounds behind).
bool SlotWorker::Reduce(uint64_t round, uint32_t chunk, Clock::time_point deadline) {
  const std::string out_key = layout_.Model(round + 1, chunk);
  Result<bool> exists = false;
  Check(Call([&] {
    exists = o_.channel->Exists(out_key);
    return exists.status();
  }));
  if (*exists) return true;
  Check(Call([&] {
    exists = o_.channel->Exists(layout_.Model(round, chunk));
    return exists.status();
  }));
  if (!*exists) return false;
  const uint64_t begin = layout_.ChunkBegin(chunk), size = layout_.ChunkSize(chunk);
  reducer_.Begin(size);
  included_.clear();
  std::fill(got_.begin(), got_.end(), 0);
  uint32_t missing = p_.workers;
  auto poll = std::chrono::microseconds(200);
  while (missing > 0) {
    for (uint32_t j = 0; j < p_.workers; ++j) {
      if (got_[j]) continue;
      const std::string key = layout_.Grad(round, chunk, j);
      Status s = Call([&] { return o_.channel->Get(key, &buf_); });
      if (s.IsNotFound()) continue;
      Check(s);
      Check(DecodeGrad(buf_, key, &gh_, &gidx_, &gval_));
      if (gh_.round != round || gh_.chunk != chunk || gh_.slot != j) {
        Check(Status::Corruption(key + ": header names another round, chunk or slot"));
      }
      if (!reducer_.Add(gidx_, gval_)) Check(Status::Corruption(key + ": index beyond its chunk"));
      if (gh_.pos != kNoItem) included_.push_back({j, gh_.pos});
      got_[j] = 1;
      --missing;
    }
    if (missing == 0 || Clock::now() >= deadline) break;
    if (o_.stop != nullptr && o_.stop->load()) throw Abort{"stopped"};
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, std::chrono::microseconds(5000));
  }
  const int width = OptimizerStateWidth(p_.optimizer.kind);
  state_.resize(size * static_cast<size_t>(width));
  if (width > 0) {
    const std::string key = layout_.State(round, chunk);
    Status s = Call([&] { return o_.channel->Get(key, &buf_); });
    if (s.IsNotFound()) return false;  // deleted: this round is long past
    Check(s);
    Check(DecodeStateChunk(buf_, key, round, chunk, state_));
  }
  const float lr = ScheduledLearningRate(p_.optimizer, round * p_.workers);
  std::span<float> weights(w_.data() + begin, size);
  reducer_.Apply(lr, weights, state_);
  MaybeCrash("reducing", round);
  if (width > 0) {
    EncodeStateChunk(round + 1, chunk, state_, &buf_);
    const std::string key = layout_.State(round + 1, chunk);
    Check(Call([&] { return o_.channel->Put(key, buf_); }));
  }
  ModelChunkHeader h;
  h.round = round + 1;
  h.chunk = chunk;
  h.begin = begin;
  h.size = size;
  h.included = included_;
  EncodeModelChunk(h, weights, &buf_);
  Check(Call([&] { return o_.channel->Put(out_key, buf_); }));
  // Older rounds of this chunk are no longer needed (keep_rounds of slack
  // for slow readers and resumed functions).
  if (round + 1 >= p_.keep_rounds) {
    const uint64_t old = round + 1 - p_.keep_rounds;
    (void)o_.channel->Delete(layout_.Model(old, chunk));
    if (width > 0) (void)o_.channel->Delete(layout_.State(old, chunk));
    for (uint32_t j = 0; j < p_.workers; ++j) (void)o_.channel->Delete(layout_.Grad(old, chunk, j));
  }
  return true;
}

// Waits until every chunk of round + 1 exists; reduces a chunk itself when
// it is still missing at `deadline` (its reducer is presumed lost). False
// when the round has been deleted (this function fell behind).
bool SlotWorker::AwaitNext(uint64_t round, Clock::time_point deadline) {
  auto poll = std::chrono::microseconds(200);
  for (uint32_t c = 0; c < layout_.chunks();) {
    Result<bool> e = false;
    Check(Call([&] {
      e = o_.channel->Exists(layout_.Model(round + 1, c));
      return e.status();
    }));
    if (*e) {
      ++c;
      continue;
    }
    if (Clock::now() >= deadline) {
      if (!Reduce(round, c, Clock::now())) return false;
      continue;
    }
    if (StopRequested()) throw Abort{"stopped"};
    std::this_thread::sleep_for(poll);
    poll = std::min(poll * 2, std::chrono::microseconds(5000));
  }
  return true;
}

WorkerResult SlotWorker::Run() {
  WorkerResult result;
  result.function_id = o_.function_id ? o_.function_id : EnvNumber("VIRGA_FUNCTION_ID");
  result.end_reason = "done";
  const milliseconds timeout(p_.round_timeout_ms);
  try {
    const std::string cursor_key = layout_.Cursor(p_.slot);
    std::string bytes;
    Status s = Call([&] { return o_.channel->Get(cursor_key, &bytes); });
    if (s.ok()) {
      Check(DecodeCursor(bytes, cursor_key, &cursor_));
      if (cursor_.done.size() != items_->size()) Check(Status::Corruption(cursor_key + ": wrong item count"));
    } else if (s.IsNotFound()) {
      cursor_.done.assign(items_->size(), 0);
    } else {
      Check(s);
    }
    uint64_t round = StartRound();
    for (;;) {
      const auto t0 = Clock::now();
      Clock::duration data_wait{}, pull{}, compute{}, push{};
      Status rs = ReadModel(round, &w_, &headers_);
      if (rs.IsNotFound()) {  // fell more than keep_rounds behind: jump ahead
        round = StartRound();
        continue;
      }
      Check(rs);
      ResolveInflight(round);
      pull += Clock::now() - t0;
      if (StopRequested()) {
        result.end_reason = "stopped";
        break;
      }
      if (Clock::now() >= stop_at_) {
        result.end_reason = "lifetime";
        break;
      }
      const auto t1 = Clock::now();
      const uint32_t pos = TakeItem();
      cursor_.round = round;
      cursor_.inflight = pos;
      const std::string cursor_bytes = EncodeCursor(cursor_);
      Check(Call([&] { return o_.channel->Put(cursor_key, cursor_bytes); }));
      MaybeCrash("cursor", round);
      push += Clock::now() - t1;
      if (pos != kNoItem) TrainItem(pos, &data_wait, &compute);
      const auto t2 = Clock::now();
      WriteGrads(round, pos);
      MaybeCrash("grads", round);
      const bool current = Reduce(round, p_.slot, Clock::now() + timeout);
      MaybeCrash("reduced", round);
      const auto t3 = Clock::now();
      push += t3 - t2;
      if (!current || !AwaitNext(round, t3 + 2 * timeout)) {
        round = StartRound();  // fell behind: its item is resolved (redone) from the cursor
        continue;
      }
      pull += Clock::now() - t3;
      if (pos != kNoItem) {
        samples_ += item_rows_;
        loss_ += item_loss_;
        inflight_loss_ = item_loss_;
        stats_.Record(data_wait, pull, compute, push, Clock::now() - t0);
      } else if (included_.empty()) {
        // Nobody had work this round: the job is ending (or this slot waits
        // for a lost peer's redo). Idle rounds slowly, so they neither burn
        // the CPU nor race the scheduler's reads of the newest round.
        std::this_thread::sleep_for(milliseconds(50));
      }
      ++round;
    }
  } catch (const Abort& a) {
    result.end_reason = a.reason;
  }
  result.samples = samples_;
  result.items_acked = items_done_;
  result.train_loss = samples_ ? loss_ / static_cast<double>(samples_) : 0;
  result.server_faults = faults_;
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  result.times = stats_.Summary();
  return result;
}

}  // namespace

Status WriteInitialRound(ChannelStore& channel, const Layout& layout, const OptimizerConfig& optimizer) {
  const int width = OptimizerStateWidth(optimizer.kind);
  std::vector<float> zeros, state;
  std::string buf;
  for (uint32_t c = 0; c < layout.chunks(); ++c) {
    const uint64_t size = layout.ChunkSize(c);
    if (width > 0) {
      state.assign(size * static_cast<size_t>(width), 0.0f);
      InitOptimizerState(optimizer, state);
      EncodeStateChunk(0, c, state, &buf);
      VIRGA_RETURN_IF_ERROR(channel.Put(layout.State(0, c), buf));
    }
    zeros.assign(size, 0.0f);
    ModelChunkHeader h;
    h.chunk = c;
    h.begin = layout.ChunkBegin(c);
    h.size = size;
    EncodeModelChunk(h, zeros, &buf);
    VIRGA_RETURN_IF_ERROR(channel.Put(layout.Model(0, c), buf));
  }
  return channel.Put(layout.RoundHint(), "0");
}

Result<WorkerResult> RunChannelWorker(const ChannelPayload& payload, ChannelWorkerOptions options) {
  auto w = std::make_unique<SlotWorker>(payload, std::move(options));
  VIRGA_RETURN_IF_ERROR(w->Setup());
  return w->Run();
}

}  // namespace virga::channel
