// Hot path of the parameter server: one worker's minibatch of K distinct
// keys (width 1, adagrad) pulled from and pushed to a warm table of R rows
// (every row materialised), on one thread. K = 470 and 2700 are a Criteo
// minibatch's distinct features at batch sizes of ~20 and ~200. Items are
// keys. Gradients are a constant 0.01 (not the pulled weights, which would
// decay into denormals and time the FPU's slow path instead).
//
//   bench_table --benchmark_filter=Sparse
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "ps/optimizer_kernels.h"
#include "ps/table.h"

namespace virga::ps {
namespace {

struct Fixture {
  std::unique_ptr<Table> table;
  std::vector<uint64_t> keys;
  std::vector<float> weights, grads;

  Fixture(TableKind kind, size_t k, uint64_t rows) {
    TableConfig c;
    c.name = "bench";
    c.kind = kind;
    c.dense_rows = kind == TableKind::kDense ? rows : 0;
    c.optimizer.kind = OptimizerKind::kAdagrad;
    table = std::move(Table::Create(c)).value();
    std::mt19937_64 rng(42);
    std::vector<uint64_t> all(rows);
    for (uint64_t i = 0; i < rows; ++i) all[i] = i;
    std::shuffle(all.begin(), all.end(), rng);
    keys.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(k));
    weights.assign(k, 0.0f);
    grads.assign(k, 0.01f);
    // Warm: every row of the table exists, the batch's rows are cached.
    for (size_t i = 0; i < all.size(); i += 65536) {
      const size_t n = std::min<size_t>(65536, all.size() - i);
      std::vector<float> g(n, 0.01f);
      (void)table->Push({all.data() + i, n}, g, nullptr);
    }
    (void)table->Push(keys, grads, nullptr);
  }
};

void Run(benchmark::State& state, TableKind kind, bool pull, bool push) {
  Fixture f(kind, static_cast<size_t>(state.range(0)), static_cast<uint64_t>(state.range(1)));
  for (auto _ : state) {
    if (pull) benchmark::DoNotOptimize(f.table->Pull(f.keys, f.weights, nullptr));
    if (push) benchmark::DoNotOptimize(f.table->Push(f.keys, f.grads, nullptr));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

// As `virga bench ps` does: a fresh random batch of K keys every call, so
// the rows come from L3 or memory, not from the L2 the last call warmed.
void RunRandom(benchmark::State& state, bool pull, bool push) {
  const auto k = static_cast<size_t>(state.range(0));
  Fixture f(TableKind::kSparse, k, static_cast<uint64_t>(state.range(1)));
  constexpr size_t kBatches = 1024;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> batches(kBatches * k);
  for (auto& key : batches) key = rng() % static_cast<uint64_t>(state.range(1));
  size_t b = 0;
  for (auto _ : state) {
    const std::span<const uint64_t> keys(batches.data() + b * k, k);
    b = (b + 1) % kBatches;
    if (pull) benchmark::DoNotOptimize(f.table->Pull(keys, f.weights, nullptr));
    if (push) benchmark::DoNotOptimize(f.table->Push(keys, f.grads, nullptr));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_SparsePullRandom(benchmark::State& s) { RunRandom(s, true, false); }
void BM_SparsePullPushRandom(benchmark::State& s) { RunRandom(s, true, true); }

void BM_SparsePull(benchmark::State& s) { Run(s, TableKind::kSparse, true, false); }
void BM_SparsePush(benchmark::State& s) { Run(s, TableKind::kSparse, false, true); }
void BM_SparsePullPush(benchmark::State& s) { Run(s, TableKind::kSparse, true, true); }
void BM_DensePull(benchmark::State& s) { Run(s, TableKind::kDense, true, false); }
void BM_DensePush(benchmark::State& s) { Run(s, TableKind::kDense, false, true); }
void BM_DensePullPush(benchmark::State& s) { Run(s, TableKind::kDense, true, true); }

// Adam over rows of width W in cache (256 rows): the update's arithmetic
// alone. Row i starts at step count i, so neighbouring rows differ as rows of
// random keys do. The kernel computes the bias corrections once per row; the
// peer below is the textbook form, two powers per coordinate (what the kernel
// did before), on the same rows.
struct AdamRows {
  static constexpr size_t kRows = 256;
  OptimizerConfig config;
  std::vector<float> rows, grads;
  explicit AdamRows(uint32_t width)
      : rows(kRows * width * 4, 0.0f), grads(kRows * width, 0.01f) {
    config.kind = OptimizerKind::kAdam;
    for (size_t i = 0; i < kRows; ++i)
      for (uint32_t j = 0; j < width; ++j) rows[i * width * 4 + width + j * 3 + 2] = float(i);
  }
};

void BM_AdamRow(benchmark::State& state) {
  const auto width = static_cast<uint32_t>(state.range(0));
  AdamRows r(width);
  for (auto _ : state) {
    optimizer_internal::WithKernel(r.config, 0.01f, [&](const auto& kernel) {
      for (size_t i = 0; i < AdamRows::kRows; ++i)
        optimizer_internal::ApplyRow(kernel, r.rows.data() + i * width * 4,
                                     r.grads.data() + i * width, width);
    });
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * AdamRows::kRows * width);  // coordinates
}

void BM_AdamRowPowPerCoordinate(benchmark::State& state) {
  const auto width = static_cast<uint32_t>(state.range(0));
  AdamRows r(width);
  const float lr = 0.01f, b1 = r.config.beta1, b2 = r.config.beta2, eps = r.config.epsilon;
  for (auto _ : state) {
    for (size_t i = 0; i < AdamRows::kRows; ++i) {
      float* w = r.rows.data() + i * width * 4;
      float* st = w + width;
      const float* g = r.grads.data() + i * width;
      for (uint32_t j = 0; j < width; ++j) {
        float* s = st + j * 3;
        const float t = s[2] + 1.0f;
        s[2] = t;
        s[0] = b1 * s[0] + (1.0f - b1) * g[j];
        s[1] = b2 * s[1] + (1.0f - b2) * g[j] * g[j];
        const float m_hat = s[0] / (1.0f - std::pow(b1, t));
        const float v_hat = s[1] / (1.0f - std::pow(b2, t));
        w[j] -= lr * m_hat / (std::sqrt(v_hat) + eps);
      }
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * AdamRows::kRows * width);
}

BENCHMARK(BM_AdamRow)->ArgName("W")->Arg(1)->Arg(16)->Arg(64);
BENCHMARK(BM_AdamRowPowPerCoordinate)->ArgName("W")->Arg(1)->Arg(16)->Arg(64);

// {K keys per call, R table rows}
void Sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"K", "R"});
  for (int64_t k : {470, 2700}) b->Args({k, 1 << 20});
  b->Args({2700, 1 << 16});
}

BENCHMARK(BM_SparsePull)->Apply(Sizes);
BENCHMARK(BM_SparsePush)->Apply(Sizes);
BENCHMARK(BM_SparsePullPush)->Apply(Sizes);
BENCHMARK(BM_SparsePullRandom)->Apply(Sizes);
BENCHMARK(BM_SparsePullPushRandom)->Apply(Sizes);
BENCHMARK(BM_DensePull)->Apply(Sizes);
BENCHMARK(BM_DensePush)->Apply(Sizes);
BENCHMARK(BM_DensePullPush)->Apply(Sizes);

}  // namespace
}  // namespace virga::ps

BENCHMARK_MAIN();
