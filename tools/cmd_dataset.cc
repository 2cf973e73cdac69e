// `virga inspect` (a dataset's manifest) and `virga scan` (stream a dataset
// through the prefetching iterator, as a worker would).
#include <chrono>
#include <cstdio>

#include "tools/commands.h"
#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/prefetch_iterator.h"

namespace virga::cli {
namespace {

struct Args {
  std::string store = DefaultStoreUri(), dataset, split = "train";
  size_t minibatch = 200;
  bool json = false;
};

void AddCommon(CLI::App* cmd, Args* a) {
  cmd->add_option("--store", a->store, "Object store URI")->capture_default_str();
  cmd->add_option("--dataset", a->dataset, "Dataset name")->required();
}

int Inspect(const Args& a) {
  auto store = ObjectStore::Open(a.store);
  if (!store.ok()) return std::fprintf(stderr, "virga inspect: %s\n", store.status().ToString().c_str()), 1;
  auto m = ReadManifest(**store, a.dataset);
  if (!m.ok()) return std::fprintf(stderr, "virga inspect: %s\n", m.status().ToString().c_str()), 1;
  if (a.json) {
    std::printf("%s\n", ManifestToJson(*m).c_str());
    return 0;
  }
  std::printf("dataset %s (%s, codec %s%s)\n", m->name.c_str(), m->format.c_str(),
              m->codec.c_str(), m->derived_from.empty() ? "" : (", " + m->derived_from).c_str());
  std::printf("  train: %llu rows, %zu partitions, %llu nnz\n",
              static_cast<unsigned long long>(m->train_rows), m->train.size(),
              static_cast<unsigned long long>(m->train_nnz));
  std::printf("  test:  %llu rows, %zu partitions, %llu nnz\n",
              static_cast<unsigned long long>(m->test_rows), m->test.size(),
              static_cast<unsigned long long>(m->test_nnz));
  std::printf("  features: %llu (hash bits %d), numeric: %zu; labels: %s in [%g, %g], %.2f%% > 0\n",
              static_cast<unsigned long long>(m->num_features), m->hash_bits,
              m->numeric_features.size(), m->label.kind.c_str(), m->label.min, m->label.max,
              m->label.count ? 100.0 * m->label.positives / m->label.count : 0.0);
  std::printf("  skipped lines: %llu; created %s\n",
              static_cast<unsigned long long>(m->skipped_lines), m->created_at.c_str());
  return 0;
}

int Scan(const Args& a) {
  auto store = ObjectStore::Open(a.store);
  if (!store.ok()) return std::fprintf(stderr, "virga scan: %s\n", store.status().ToString().c_str()), 1;
  auto m = ReadManifest(**store, a.dataset);
  if (!m.ok()) return std::fprintf(stderr, "virga scan: %s\n", m.status().ToString().c_str()), 1;
  std::vector<std::string> keys;
  for (const auto& p : a.split == "test" ? m->test : m->train) keys.push_back(p.key);
  const auto start = std::chrono::steady_clock::now();
  PrefetchOptions po;
  po.minibatch_rows = a.minibatch;
  PrefetchIterator it(*store, keys, po);
  uint64_t rows = 0, nnz = 0, batches = 0;
  double label_sum = 0;
  Minibatch mb;
  while (true) {
    auto more = it.Next(&mb);
    if (!more.ok()) return std::fprintf(stderr, "virga scan: %s\n", more.status().ToString().c_str()), 1;
    if (!*more) break;
    ++batches;
    rows += mb.rows.rows();
    nnz += mb.rows.nnz();
    for (float y : mb.rows.labels) label_sum += y;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("scanned %s/%s: %llu rows, %llu minibatches of <= %zu, %llu nnz, mean label %.4f, "
              "%.3f s (%.2f M rows/s, waited for data %.3f s)\n",
              a.dataset.c_str(), a.split.c_str(), static_cast<unsigned long long>(rows),
              static_cast<unsigned long long>(batches), a.minibatch,
              static_cast<unsigned long long>(nnz), rows ? label_sum / rows : 0.0, secs,
              secs > 0 ? rows / secs / 1e6 : 0.0, it.data_wait().count() / 1e9);
  return 0;
}

}  // namespace

void RegisterDatasetTools(CLI::App& app, int* exit_code) {
  auto inspect_args = std::make_shared<Args>();
  auto* inspect = app.add_subcommand("inspect", "Describe a dataset from its manifest");
  AddCommon(inspect, inspect_args.get());
  inspect->add_flag("--json", inspect_args->json, "Print the manifest JSON");
  inspect->callback([inspect_args, exit_code] { *exit_code = Inspect(*inspect_args); });

  auto scan_args = std::make_shared<Args>();
  auto* scan = app.add_subcommand("scan", "Stream a dataset split through the prefetching iterator");
  AddCommon(scan, scan_args.get());
  scan->add_option("--split", scan_args->split, "train | test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  scan->add_option("--minibatch", scan_args->minibatch, "Rows per minibatch")->capture_default_str();
  scan->callback([scan_args, exit_code] { *exit_code = Scan(*scan_args); });
}

}  // namespace virga::cli
