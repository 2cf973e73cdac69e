// The worker's per-iteration CPU cost without the network: KeyMap (distinct
// keys and slots) + zeroing the gradient + Model::Gradient, on Criteo-like
// rows (39 binary features per row, one per field, hashed into 2^22 slots;
// per-field values drawn from skewed distributions, so minibatches repeat
// popular features as real click logs do).
//
//   build-bench/src/models/bench_models --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <unordered_map>
#include <vector>

#include "models/key_map.h"
#include "virga/model.h"

namespace virga {
namespace {

constexpr int kFields = 39;
constexpr int kHashBits = 22;

uint32_t Mix(uint64_t field, uint64_t value) {
  uint64_t x = (field << 40) ^ value;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x >> (64 - kHashBits));
}

// A partition of `rows` Criteo-like rows.
RowBlock CriteoLike(size_t rows) {
  std::mt19937_64 rng(42);
  // Cardinality per field: integer fields ~500 buckets, categorical 10 .. 1e6.
  std::vector<double> card(kFields);
  for (int f = 0; f < kFields; ++f) card[f] = f < 13 ? 500 : std::pow(10.0, 1 + (f * 7 % 26) / 5.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  RowBlock b;
  for (size_t r = 0; r < rows; ++r) {
    for (int f = 0; f < kFields; ++f) {
      // value ~ card^(u^2): heavy head, long tail.
      const double x = u(rng);
      const auto v = static_cast<uint64_t>(std::pow(card[f], x * x));
      b.AddFeature(Mix(static_cast<uint64_t>(f), v), 1.0f);
    }
    b.EndRow(u(rng) < 0.25 ? 1.0f : 0.0f);
  }
  return b;
}

// Minibatches are consecutive slices of one 4096-row partition, as the
// worker cuts them from a decoded partition.
struct Fixture {
  explicit Fixture(size_t rows) : minibatch(rows), partition(CriteoLike(4096)) {
    weights.resize(rows * kFields + 1);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    for (float& w : weights) w = nd(rng);
    grads.resize(weights.size());
  }
  RowBlockView Next() {
    const RowBlockView all = partition.view();
    if (pos + minibatch > all.rows()) pos = 0;
    pos += minibatch;
    return all.Slice(pos - minibatch, pos);
  }
  size_t minibatch;
  size_t pos = 0;
  RowBlock partition;
  std::vector<float> weights, grads;
};

void BM_KeyMap(benchmark::State& state) {
  Fixture fx(static_cast<size_t>(state.range(0)));
  KeyMap keys;
  size_t slots = 0;
  for (auto _ : state) {
    keys.Build(fx.Next());
    slots += keys.num_slots();
    benchmark::DoNotOptimize(keys.slots().data());
  }
  state.counters["slots/batch"] = static_cast<double>(slots) / static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                                                benchmark::Counter::kIsRate);
}

// The peer: the same first-appearance numbering with std::unordered_map
// (reserved once, cleared per minibatch).
void BM_KeyMapUnorderedMap(benchmark::State& state) {
  Fixture fx(static_cast<size_t>(state.range(0)));
  std::unordered_map<uint32_t, uint32_t> map;
  map.reserve(static_cast<size_t>(state.range(0)) * kFields);
  std::vector<uint64_t> keys;
  std::vector<uint32_t> slots;
  size_t n_slots = 0;
  for (auto _ : state) {
    const RowBlockView rows = fx.Next();
    map.clear();
    keys.assign(1, kBiasKey);
    slots.resize(rows.nnz());
    for (size_t i = 0; i < rows.nnz(); ++i) {
      const uint32_t key = rows.indices[rows.offsets[0] + i];
      auto [it, fresh] = map.try_emplace(key, static_cast<uint32_t>(keys.size()));
      if (fresh) keys.push_back(key);
      slots[i] = it->second;
    }
    n_slots += keys.size();
    benchmark::DoNotOptimize(slots.data());
  }
  state.counters["slots/batch"] = static_cast<double>(n_slots) / static_cast<double>(state.iterations());
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                                                benchmark::Counter::kIsRate);
}

// The compute part of one worker iteration: KeyMap + zeroed grads + Gradient.
void BM_Iteration(benchmark::State& state, ModelKind kind) {
  Fixture fx(static_cast<size_t>(state.range(0)));
  auto model = MakeModel(kind);
  KeyMap keys;
  double loss = 0;
  for (auto _ : state) {
    const RowBlockView rows = fx.Next();
    keys.Build(rows);
    const size_t n = keys.num_slots();
    std::fill_n(fx.grads.begin(), n, 0.0f);
    loss += model->Gradient(keys.Batch(rows), std::span<const float>(fx.weights.data(), n),
                            std::span<float>(fx.grads.data(), n));
    benchmark::DoNotOptimize(fx.grads.data());
  }
  benchmark::DoNotOptimize(loss);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                                                benchmark::Counter::kIsRate);
}

void BM_GradientOnly(benchmark::State& state) {
  Fixture fx(static_cast<size_t>(state.range(0)));
  auto model = MakeModel(ModelKind::kLogisticRegression);
  std::vector<std::unique_ptr<KeyMap>> maps;
  std::vector<RowBlockView> views;
  for (size_t j = 0; j < 16; ++j) {
    views.push_back(fx.Next());
    maps.push_back(std::make_unique<KeyMap>());
    maps.back()->Build(views.back());
  }
  size_t i = 0;
  double loss = 0;
  for (auto _ : state) {
    const size_t j = i++ % maps.size();
    const size_t n = maps[j]->num_slots();
    loss += model->Gradient(maps[j]->Batch(views[j]),
                            std::span<const float>(fx.weights.data(), n),
                            std::span<float>(fx.grads.data(), n));
  }
  benchmark::DoNotOptimize(loss);
}

BENCHMARK(BM_KeyMap)->Arg(20)->Arg(200)->Arg(2560);  // 2560: a local round of 128 x 20 rows
BENCHMARK(BM_KeyMapUnorderedMap)->Arg(20)->Arg(200)->Arg(2560);
// A local round's minibatches (src/worker/trainer.cc): each one's distinct
// slots from the round's KeyMap, with DistinctSlots against the branching
// stamp loop the worker used before (the peer, kept here).
void DistinctSlotsOfRound(benchmark::State& state, bool branch_free) {
  constexpr size_t kMinibatch = 20;
  Fixture fx(static_cast<size_t>(state.range(0)));
  const RowBlockView round = fx.Next();
  KeyMap keys;
  keys.Build(round);
  const uint32_t slots = keys.num_slots();
  DistinctSlots distinct;
  std::vector<uint32_t> stamp(slots, 0), touched;
  uint32_t gen = 0;
  size_t listed = 0;
  for (auto _ : state) {
    for (size_t at = 0; at < round.rows(); at += kMinibatch) {
      const RowBlockView mb = round.Slice(at, std::min(at + kMinibatch, round.rows()));
      const std::span<const uint32_t> s = keys.slots().subspan(mb.offsets[0] - round.offsets[0], mb.nnz());
      if (branch_free) {
        listed += distinct.Of(s, KeyMap::kBiasSlot, slots).size();
        continue;
      }
      ++gen;
      touched.clear();
      stamp[KeyMap::kBiasSlot] = gen;
      touched.push_back(KeyMap::kBiasSlot);
      for (uint32_t sl : s) {
        if (stamp[sl] == gen) continue;
        stamp[sl] = gen;
        touched.push_back(sl);
      }
      listed += touched.size();
    }
  }
  benchmark::DoNotOptimize(listed);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * round.rows()),
                                                benchmark::Counter::kIsRate);
  state.counters["slots/minibatch"] = static_cast<double>(listed) /
      static_cast<double>(state.iterations() * ((round.rows() + kMinibatch - 1) / kMinibatch));
}
void BM_DistinctSlots(benchmark::State& state) { DistinctSlotsOfRound(state, true); }
void BM_DistinctSlotsBranching(benchmark::State& state) { DistinctSlotsOfRound(state, false); }

// A round's keys' slots in the previous round, for a pull sent before that
// round's push (Replica::AddDeltaOf): KeyMap::Find on the previous round's
// map, against the peer the worker ran before, a table of the previous
// keys built per round (kept here). Two consecutive 2560-row rounds.
void PrevSlots(benchmark::State& state, bool find) {
  const size_t rows = static_cast<size_t>(state.range(0));
  const RowBlock partition = CriteoLike(2 * rows);
  const RowBlockView all = partition.view();
  KeyMap prev, cur;
  prev.Build(all.Slice(0, rows));
  cur.Build(all.Slice(rows, 2 * rows));
  const std::span<const uint64_t> prev_keys = prev.keys(), keys = cur.keys();
  std::vector<uint32_t> out(keys.size()), index;
  size_t found = 0;
  for (auto _ : state) {
    if (find) {
      prev.Find(keys, out);
    } else {
      size_t cap = 16;
      while (cap < 2 * prev_keys.size()) cap *= 2;
      if (index.size() < cap) index.resize(cap);
      std::fill_n(index.begin(), cap, 0u);
      const size_t mask = cap - 1;
      const int shift = 64 - std::countr_zero(cap);
      auto home = [shift](uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift); };
      for (size_t i = 0; i < prev_keys.size(); ++i) {
        size_t at = home(prev_keys[i]);
        while (index[at] != 0) at = (at + 1) & mask;
        index[at] = static_cast<uint32_t>(i + 1);
      }
      for (size_t k = 0; k < keys.size(); ++k) {
        out[k] = KeyMap::kAbsent;
        for (size_t at = home(keys[k]);; at = (at + 1) & mask) {
          const uint32_t e = index[at];
          if (e == 0) break;
          if (prev_keys[e - 1] != keys[k]) continue;
          out[k] = e - 1;
          break;
        }
      }
    }
    found += static_cast<size_t>(std::count_if(out.begin(), out.end(), [](uint32_t e) { return e != KeyMap::kAbsent; }));
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["keys"] = static_cast<double>(keys.size());
  state.counters["in_prev"] = static_cast<double>(found) / static_cast<double>(state.iterations());
}
void BM_PrevSlots(benchmark::State& state) { PrevSlots(state, true); }
void BM_PrevSlotsOwnIndex(benchmark::State& state) { PrevSlots(state, false); }

BENCHMARK(BM_PrevSlots)->Arg(2560);
BENCHMARK(BM_PrevSlotsOwnIndex)->Arg(2560);
BENCHMARK(BM_DistinctSlots)->Arg(2560);
BENCHMARK(BM_DistinctSlotsBranching)->Arg(2560);
BENCHMARK_CAPTURE(BM_Iteration, lr, ModelKind::kLogisticRegression)->Arg(20)->Arg(200);
BENCHMARK_CAPTURE(BM_Iteration, svm, ModelKind::kLinearSvm)->Arg(20)->Arg(200);
BENCHMARK(BM_GradientOnly)->Arg(20)->Arg(200);

}  // namespace
}  // namespace virga

BENCHMARK_MAIN();
