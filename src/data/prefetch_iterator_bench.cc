// Throughput of the data path: the partition codec alone (MB/s of raw
// payload) and minibatches through PrefetchIterator (rows/s) from a mem://
// store of Criteo-like partitions: 4096 rows x 39 binary features, indices
// hashed into 2^22 slots from skewed per-field values, ~25% positive labels.
// The consumer sums every label and index so no row goes unread.
//
// BM_IteratorCloud streams them through the emulation of S3 seen from a
// cloud function (ThrottledStore: 10 ms per GET, 60 MB/s).
//
//   bench_iterator --benchmark_filter=Iterator
//   bench_iterator --benchmark_filter=IteratorCloud
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <random>

#include "store/throttled_store.h"
#include "virga/partition.h"
#include "virga/prefetch_iterator.h"

namespace virga {
namespace {

using namespace std::chrono_literals;

constexpr size_t kRowsPerPartition = 4096;
constexpr size_t kFeatures = 39;
constexpr size_t kPartitions = 64;  // distinct objects; iterations cycle over them
constexpr size_t kRounds = 4;

uint32_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

RowBlock CriteoLike(uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  RowBlock b;
  b.Reserve(kRowsPerPartition, kRowsPerPartition * kFeatures);
  for (size_t r = 0; r < kRowsPerPartition; ++r) {
    for (uint64_t f = 0; f < kFeatures; ++f) {
      // Log-uniform values: a few very common, a long tail (as categorical
      // Criteo columns).
      auto v = static_cast<uint64_t>(std::exp(u(rng) * std::log(1e5)));
      b.AddFeature(Mix(f << 40 | v) & ((1u << 22) - 1), 1.0f);
    }
    b.EndRow(u(rng) < 0.25 ? 1.0f : 0.0f);
  }
  return b;
}

const RowBlock& SamplePartition() {
  static const RowBlock rows = CriteoLike(7);
  return rows;
}

// Encoding options; `forced` keeps the codec's output even where it saves
// little (these rows barely compress with lz4, so by default they are stored raw).
PartitionEncodeOptions EncodeOptions(Codec codec, bool forced) {
  PartitionEncodeOptions o;
  o.codec = codec;
  if (forced) o.min_saving = 0;
  return o;
}

std::string StoreUri(Codec codec, bool forced) {
  return std::string("mem://bench_") + CodecName(codec) + (forced ? "_forced" : "");
}

// The keys of kPartitions encoded partitions in StoreUri(codec, forced).
const std::vector<std::string>& StoredKeys(Codec codec, bool forced) {
  static std::vector<std::string> keys[3][2];
  std::vector<std::string>& k = keys[static_cast<int>(codec)][forced];
  if (!k.empty()) return k;
  auto store = *ObjectStore::Open(StoreUri(codec, forced));
  std::string obj;
  for (size_t p = 0; p < kPartitions; ++p) {
    RowBlock rows = CriteoLike(static_cast<uint32_t>(p));
    if (!EncodePartition(rows.view(), EncodeOptions(codec, forced), &obj).ok()) std::abort();
    k.push_back("datasets/bench/train/part-" + std::to_string(p));
    if (!store->Put(k.back(), obj).ok()) std::abort();
  }
  return k;
}

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
double ProcessCpuSeconds() { return CpuSeconds(CLOCK_PROCESS_CPUTIME_ID); }
double ThreadCpuSeconds() { return CpuSeconds(CLOCK_THREAD_CPUTIME_ID); }

size_t RawBytes(const RowBlockView& v) { return 4 * (2 * v.rows() + 1 + v.nnz()); }

void BM_Encode(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const RowBlockView v = SamplePartition().view();
  std::string out;
  for (auto _ : state) {
    if (!EncodePartition(v, EncodeOptions(codec, true), &out).ok())
      state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * RawBytes(v));
  state.counters["ratio"] = static_cast<double>(RawBytes(v)) / out.size();
  state.SetLabel(CodecName(codec));
}

void BM_Decode(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const RowBlockView v = SamplePartition().view();
  std::string obj;
  if (!EncodePartition(v, EncodeOptions(codec, true), &obj).ok()) std::abort();
  PartitionBuffer buf;
  for (auto _ : state) {
    if (!DecodePartition(obj, "k", &buf).ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(buf.view().indices.data());
  }
  state.SetBytesProcessed(state.iterations() * RawBytes(v));
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * v.rows()),
                                                benchmark::Counter::kIsRate);
  state.SetLabel(CodecName(codec));
}

// Drains `it`, summing every label and index; returns the rows seen.
uint64_t Consume(PrefetchIterator& it, benchmark::State& state, uint64_t* label_sum,
                 uint64_t* index_sum) {
  uint64_t rows = 0;
  Minibatch b;
  for (;;) {
    Result<bool> more = it.Next(&b);
    if (!more.ok()) state.SkipWithError(more.status().ToString().c_str());
    if (!more.ok() || !*more) break;
    const RowBlockView& v = b.rows;
    float labels = 0;
    for (float l : v.labels) labels += l;
    uint64_t sum = 0;
    for (uint32_t i = v.offsets[0]; i < v.offsets[v.rows()]; ++i) sum += v.indices[i];
    *label_sum += static_cast<uint64_t>(labels);
    *index_sum += sum;
    rows += v.rows();
  }
  return rows;
}

// One iteration streams the stored partitions kRounds times (256 x 4096
// rows) through a fresh iterator: thread start-up and the first touch of its
// buffers are included, amortised over ~1M rows.
void BM_Iterator(benchmark::State& state) {
  const Codec codec = static_cast<Codec>(state.range(0));
  const bool forced = state.range(3) != 0;
  const std::vector<std::string>& keys = StoredKeys(codec, forced);
  auto store = *ObjectStore::Open(StoreUri(codec, forced));
  PrefetchOptions opts;
  opts.minibatch_rows = static_cast<size_t>(state.range(1));
  opts.buffers = static_cast<size_t>(state.range(2));
  opts.fetches_in_flight = static_cast<size_t>(state.range(4));
  uint64_t rows = 0, label_sum = 0, index_sum = 0;
  int64_t wait_ns = 0;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds(), consumer_start = ThreadCpuSeconds();
  for (auto _ : state) {
    size_t next = 0;  // kRounds passes over the stored partitions
    PrefetchIterator it(
        store,
        [&]() -> std::optional<std::string> {
          if (next == kRounds * keys.size()) return std::nullopt;
          return keys[next++ % keys.size()];
        },
        opts);
    rows += Consume(it, state, &label_sum, &index_sum);
    wait_ns += it.data_wait().count();
  }
  // On a shared machine wall-clock rows/s depends on the neighbours; rows per
  // CPU-second of each side tells what one free core per side would give.
  const double consumer_cpu = ThreadCpuSeconds() - consumer_start;
  const double producer_cpu = ProcessCpuSeconds() - cpu_start - consumer_cpu;
  state.counters["producer_rows/cpu_s"] = rows / std::max(1e-9, producer_cpu);
  state.counters["consumer_rows/cpu_s"] = rows / std::max(1e-9, consumer_cpu);
  benchmark::DoNotOptimize(label_sum);
  benchmark::DoNotOptimize(index_sum);
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  // Share of the consumer's time spent blocked on data.
  const auto elapsed = std::chrono::steady_clock::now() - start;
  state.counters["wait%"] = 100.0 * static_cast<double>(wait_ns) /
                            static_cast<double>(std::max<int64_t>(1, elapsed.count()));
  state.SetLabel(std::string(CodecName(codec)) + (forced ? " forced" : ""));
}

// The store as a cloud function sees S3: 10 ms per request, 60 MB/s for the
// process (ThrottledStore over the mem:// partitions). One iteration streams
// the 64 stored partitions once; arg 0 is fetches_in_flight (0 = the
// default), so the rows of one run compare one GET at a time with the
// default side by side.
void BM_IteratorCloud(benchmark::State& state) {
  const std::vector<std::string>& keys = StoredKeys(Codec::kLz4, false);
  auto mem = *ObjectStore::Open(StoreUri(Codec::kLz4, false));
  auto store = std::make_shared<ThrottledStore>(mem, ThrottleOptions{10ms, 60e6});
  PrefetchOptions opts;
  if (state.range(0) > 0) opts.fetches_in_flight = static_cast<size_t>(state.range(0));
  uint64_t rows = 0, label_sum = 0, index_sum = 0;
  int64_t wait_ns = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    PrefetchIterator it(store, keys, opts);
    rows += Consume(it, state, &label_sum, &index_sum);
    wait_ns += it.data_wait().count();
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  const ThrottleStats stats = store->stats();
  benchmark::DoNotOptimize(label_sum);
  benchmark::DoNotOptimize(index_sum);
  state.SetItemsProcessed(static_cast<int64_t>(rows));
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(stats.bytes_read) / 1e6,
                                              benchmark::Counter::kIsRate);
  state.counters["KB/object"] = static_cast<double>(stats.bytes_read) / 1e3 /
                                static_cast<double>(std::max<uint64_t>(1, stats.requests));
  state.counters["wait%"] = 100.0 * static_cast<double>(wait_ns) /
                            static_cast<double>(std::max<int64_t>(1, elapsed.count()));
  state.SetLabel("fetches_in_flight " + std::to_string(opts.fetches_in_flight));
}

void CodecArgs(benchmark::internal::Benchmark* b) {
  for (Codec c : {Codec::kNone, Codec::kLz4, Codec::kZstd}) b->Arg(static_cast<int>(c));
}

BENCHMARK(BM_Encode)->Apply(CodecArgs);
BENCHMARK(BM_Decode)->Apply(CodecArgs);
// codec, minibatch rows, buffers, forced (keep the codec's output), fetches
// in flight (a mem:// store has no latency to hide: 1 = one fetch thread)
BENCHMARK(BM_Iterator)
    ->ArgNames({"codec", "mb", "buffers", "forced", "fetches"})
    ->Args({1, 200, 3, 0, 1})
    ->Args({1, 200, 3, 1, 1})
    ->Args({1, 200, 2, 1, 1})
    ->Args({1, 200, 8, 1, 1})
    ->Args({1, 200, 5, 1, 4})
    ->Args({1, 1000, 3, 1, 1})
    ->Args({0, 200, 3, 0, 1})
    ->Args({2, 200, 3, 1, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IteratorCloud)
    ->ArgNames({"fetches"})
    ->Arg(1)
    ->Arg(0)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace virga

BENCHMARK_MAIN();
