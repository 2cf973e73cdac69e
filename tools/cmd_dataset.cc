// `virga inspect` (a dataset's manifest), `virga scan` (stream a dataset
// through the prefetching iterator, as a worker would) and `virga dump`
// (write a split back out as LIBSVM text, e.g. to train LIBLINEAR on the very
// same encoding).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <utility>
#include <vector>

#include "tools/commands.h"
#include "tools/progress.h"
#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/prefetch_iterator.h"
#include "virga/text_writer.h"

namespace virga::cli {
namespace {

struct Args {
  std::string store = DefaultStoreUri(), dataset, split = "train";
  size_t minibatch = 200;
  bool json = false;
  std::string out;           // dump: output file, "-" = stdout
  std::string format = "libsvm";
  bool as_stored = false;    // dump: indices as stored (see AppendLibsvm)
};

std::vector<std::string> SplitKeys(const Manifest& m, const std::string& split) {
  std::vector<std::string> keys;
  for (const auto& p : split == "test" ? m.test : m.train) keys.push_back(p.key);
  return keys;
}

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
  const std::vector<std::string> keys = SplitKeys(*m, a.split);
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

// Appends rows as LIBSVM lines, "label idx:val ...", floats in the shortest
// text that reads back to the same float.
// - canonical (default): idx = stored index + 1 (LIBLINEAR needs indices >= 1),
//   ascending, duplicates merged by summing their values: the same dot product
//   with any weight vector, so a linear model sees the same data.
// - as_stored: indices as stored (a LIBSVM dataset keeps its file's indices;
//   hashed Criteo ones are 0-based), in stored order, duplicates kept: a
//   re-ingest of a LIBSVM dataset's dump gives back the same rows.
// `pairs` is scratch reused across calls (no allocation per row).
void AppendLibsvm(const RowBlockView& rows, bool as_stored,
                  std::vector<std::pair<uint64_t, float>>* pairs, std::string* out) {
  char buf[64];
  auto put = [&](auto v) { out->append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr); };
  auto put_feature = [&](uint64_t index, float value) {
    out->push_back(' ');
    put(index);
    out->push_back(':');
    if (value == 1.0f) {
      out->push_back('1');
    } else {
      put(value);
    }
  };
  for (size_t r = 0; r < rows.rows(); ++r) {
    put(rows.labels[r]);
    const uint32_t begin = rows.offsets[r], end = rows.offsets[r + 1];
    if (as_stored) {
      for (uint32_t pos = begin; pos < end; ++pos) put_feature(rows.indices[pos], rows.value(pos));
    } else {
      pairs->clear();
      for (uint32_t pos = begin; pos < end; ++pos) {
        pairs->emplace_back(uint64_t{rows.indices[pos]} + 1, rows.value(pos));
      }
      std::sort(pairs->begin(), pairs->end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      for (size_t i = 0; i < pairs->size();) {
        const uint64_t index = (*pairs)[i].first;
        float sum = 0;
        for (; i < pairs->size() && (*pairs)[i].first == index; ++i) sum += (*pairs)[i].second;
        put_feature(index, sum);
      }
    }
    out->push_back('\n');
  }
}

struct DumpCounts {
  uint64_t rows = 0, nnz = 0, bytes = 0;
};

// Streams `keys` in order through the prefetching iterator into `out_path`
// (TextWriter: .gz/.zst compress, "-" is stdout; a failed dump leaves no file).
Status DumpLibsvm(std::shared_ptr<ObjectStore> store, std::vector<std::string> keys,
                  const std::string& out_path, bool as_stored, DumpCounts* counts) {
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<TextWriter> writer, TextWriter::Open(out_path));
  PrefetchOptions po;
  po.minibatch_rows = 4096;  // bounds the text staged per Write
  PrefetchIterator it(std::move(store), std::move(keys), po);
  std::string text;
  std::vector<std::pair<uint64_t, float>> pairs;
  Minibatch mb;
  ProgressLine line("dump", 0);
  while (true) {
    VIRGA_ASSIGN_OR_RETURN(bool more, it.Next(&mb));
    if (!more) break;
    line.Update(counts->rows, writer->bytes_written());
    text.clear();
    AppendLibsvm(mb.rows, as_stored, &pairs, &text);
    VIRGA_RETURN_IF_ERROR(writer->Write(text));
    counts->rows += mb.rows.rows();
    counts->nnz += mb.rows.nnz();
  }
  line.Finish();
  VIRGA_RETURN_IF_ERROR(writer->Close());
  counts->bytes = writer->bytes_written();
  return Status::OK();
}

int Dump(const Args& a) {
  auto fail = [](const Status& s) {
    return std::fprintf(stderr, "virga dump: %s\n", s.ToString().c_str()), 1;
  };
  auto store = ObjectStore::Open(a.store);
  if (!store.ok()) return fail(store.status());
  auto m = ReadManifest(**store, a.dataset);
  if (!m.ok()) return fail(m.status());
  const auto start = std::chrono::steady_clock::now();
  DumpCounts c;
  if (Status s = DumpLibsvm(*store, SplitKeys(*m, a.split), a.out, a.as_stored, &c); !s.ok()) {
    return fail(s);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The summary goes to stderr when the data goes to stdout.
  std::fprintf(a.out == "-" ? stderr : stdout,
               "dumped %s/%s: %llu rows, %llu stored nnz, %.1f MB of %s text (%s) to %s in "
               "%.2f s\n",
               a.dataset.c_str(), a.split.c_str(), static_cast<unsigned long long>(c.rows),
               static_cast<unsigned long long>(c.nnz), c.bytes / 1e6, a.format.c_str(),
               a.as_stored ? "as stored" : "indices + 1, ascending, duplicates summed",
               a.out.c_str(), secs);
  return 0;
}

}  // namespace

int ListDatasetsCommand(const std::string& store_uri, bool json) {
  auto fail = [](const Status& s) { return std::fprintf(stderr, "virga datasets: %s\n", s.ToString().c_str()), 1; };
  auto store = ObjectStore::Open(store_uri);
  if (!store.ok()) return fail(store.status());
  auto names = ListDatasets(**store);
  if (!names.ok()) return fail(names.status());
  if (!json) {
    std::printf("%-28s %-8s %12s %12s %10s  %s\n", "DATASET", "FORMAT", "TRAIN ROWS", "TEST ROWS",
                "MB", "CREATED");
  }
  std::string out = "[";
  for (const std::string& n : *names) {
    auto m = ReadManifest(**store, n);
    if (!m.ok()) {
      std::fprintf(stderr, "virga datasets: %s\n", m.status().ToString().c_str());
      continue;
    }
    uint64_t bytes = 0;
    for (const auto* split : {&m->train, &m->test}) {
      for (const PartitionInfo& p : *split) bytes += p.bytes;
    }
    if (json) {
      out += (out.size() > 1 ? "," : "") + ManifestToJson(*m);
    } else {
      std::printf("%-28s %-8s %12llu %12llu %10.1f  %s\n", n.c_str(), m->format.c_str(),
                  static_cast<unsigned long long>(m->train_rows),
                  static_cast<unsigned long long>(m->test_rows), bytes / 1e6, m->created_at.c_str());
    }
  }
  if (json) std::printf("%s]\n", out.c_str());
  return 0;
}

int RemoveDatasets(const std::string& store_uri, const std::vector<std::string>& names) {
  auto store = ObjectStore::Open(store_uri);
  if (!store.ok()) return std::fprintf(stderr, "virga datasets rm: %s\n", store.status().ToString().c_str()), 1;
  int rc = 0;
  for (const std::string& n : names) {
    auto removed = DeleteDataset(**store, n);
    if (!removed.ok()) {
      std::fprintf(stderr, "virga datasets rm: %s\n", removed.status().ToString().c_str());
      rc = 1;
      continue;
    }
    std::printf("removed dataset %s (%llu objects)\n", n.c_str(), static_cast<unsigned long long>(*removed));
  }
  return rc;
}

void RegisterDatasetTools(CLI::App& app, int* exit_code) {
  {
    auto* ds = app.add_subcommand("datasets", "List or remove the datasets of a store");
    ds->require_subcommand(1);
    auto store = std::make_shared<std::string>(DefaultStoreUri());
    auto json = std::make_shared<bool>(false);
    auto* list = ds->add_subcommand("list", "Datasets with their rows, size and creation time");
    list->add_option("--store", *store, "Object store URI")->capture_default_str();
    list->add_flag("--json", *json, "Print the manifests as a JSON array");
    list->callback([store, json, exit_code] { *exit_code = ListDatasetsCommand(*store, *json); });
    auto names = std::make_shared<std::vector<std::string>>();
    auto rm_store = std::make_shared<std::string>(DefaultStoreUri());
    auto* rm = ds->add_subcommand("rm", "Remove datasets (manifest first, then every object)");
    rm->add_option("--store", *rm_store, "Object store URI")->capture_default_str();
    rm->add_option("names", *names, "Dataset names")->required();
    rm->callback([rm_store, names, exit_code] { *exit_code = RemoveDatasets(*rm_store, *names); });
  }

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

  auto dump_args = std::make_shared<Args>();
  auto* dump =
      app.add_subcommand("dump", "Write a dataset split as LIBSVM text, in partition order");
  AddCommon(dump, dump_args.get());
  dump->add_option("--split", dump_args->split, "train | test")
      ->check(CLI::IsMember({"train", "test"}))
      ->capture_default_str();
  dump->add_option("--out", dump_args->out, "Output file (.gz/.zst compress; - for stdout)")
      ->required();
  dump->add_option("--format", dump_args->format, "Text format")
      ->check(CLI::IsMember({"libsvm"}))
      ->capture_default_str();
  dump->add_flag("--as-stored", dump_args->as_stored,
                 "Write indices exactly as stored (a LIBSVM dataset's own indices), in stored "
                 "order, duplicates kept, so a re-ingest gives the same rows; default: "
                 "LIBLINEAR's form (indices + 1, ascending, duplicates summed)");
  dump->callback([dump_args, exit_code] { *exit_code = Dump(*dump_args); });
}

}  // namespace virga::cli
