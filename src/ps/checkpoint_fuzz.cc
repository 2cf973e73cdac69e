// libFuzzer target: checkpoint restore. A checkpoint is read from an object
// store and is untrusted input: Table::Restore (ps/table_serialize.h),
// KvStore::Restore and WorkQueues::Restore must reject any damage with a
// Status, never crash, hang or allocate beyond what the bytes justify.
//
// Input: byte 0 picks what the rest is (mod 4):
//   0  a blob fed as is to all three restores (checksums rarely match);
//   1  a table body: the 24-byte header (size, checksum) is made valid;
//   2  a KV snapshot body: its XXH3 trailer is appended;
//   3  a work-queue snapshot body: its XXH3 trailer is appended.
// So the checksums do not hide the parsers behind them. A restore that
// succeeds must give back state that serializes and restores again.
//
// VIRGA_FUZZ_SEEDS=DIR writes a seed corpus made by the real serializers
// (tables of both kinds with optimizer state, a KV, queues with leases) into
// DIR and exits; scripts/fuzz.sh does that for an empty corpus.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <xxhash.h>

#include "ps/kv_store.h"
#include "ps/table.h"
#include "ps/table_serialize.h"
#include "ps/work_queue.h"

namespace {

using virga::ps::KvStore;
using virga::ps::Table;
using virga::ps::WorkQueues;

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

std::string WithTableHeader(std::string_view body) {
  std::string blob("VGTB\x01\x00\x00\x00", 8);
  PutU64(&blob, body.size());
  const uint64_t seed = XXH3_64bits(blob.data(), 16);
  PutU64(&blob, XXH3_64bits_withSeed(body.data(), body.size(), seed));
  blob.append(body);
  return blob;
}

std::string WithTrailer(std::string_view body) {
  std::string blob(body);
  PutU64(&blob, XXH3_64bits(body.data(), body.size()));
  return blob;
}

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "checkpoint_fuzz: %s\n", what);
  std::abort();
}

void RestoreTable(std::string_view blob) {
  auto t = Table::Restore(blob, "fuzz");
  if (!t.ok()) return;
  std::string again;
  Check((*t)->Serialize(&again).ok(), "a restored table does not serialize");
  Check(Table::Restore(again, "again").ok(), "a restored table's bytes do not restore");
  const uint64_t keys[] = {0, 1, 42, ~uint64_t{0}};
  std::vector<float> out(std::size(keys) * (*t)->config().width);
  uint64_t version = 0;
  (void)(*t)->Pull(keys, out, &version);
}

// A KV store's or the queues' state (KvStore, WorkQueues): what restores
// serializes to bytes that restore again.
template <typename State>
void RestoreState(std::string_view blob, const char* what) {
  State state;
  if (!state.Restore(blob, "fuzz").ok()) return;
  std::string again;
  state.Serialize(&again);
  State other;
  Check(other.Restore(again, "again").ok(), what);
}
void RestoreKv(std::string_view blob) {
  RestoreState<KvStore>(blob, "a restored KV's bytes do not restore");
}
void RestoreQueues(std::string_view blob) {
  RestoreState<WorkQueues>(blob, "restored queues' bytes do not restore");
}

// Seeds from the real serializers, in this target's input format.
void WriteSeeds(const std::string& dir) {
  auto write = [&](const std::string& name, char mode, std::string_view body) {
    std::ofstream(dir + "/" + name, std::ios::binary) << mode << body;
  };
  auto body = [](const std::string& blob, size_t skip, size_t trailer) {
    return blob.substr(skip, blob.size() - skip - trailer);
  };
  virga::TableConfig sparse;
  sparse.name = "job.model";
  sparse.width = 2;
  sparse.optimizer.kind = virga::OptimizerKind::kAdam;
  virga::TableConfig dense = sparse;
  dense.name = "dense";
  dense.kind = virga::TableKind::kDense;
  dense.dense_rows = 3;
  dense.optimizer.kind = virga::OptimizerKind::kFtrl;
  for (const virga::TableConfig& c : {sparse, dense}) {
    auto t = Table::Create(c);
    if (!t.ok()) continue;
    const uint64_t keys[] = {0, 1, 2};
    const float grads[] = {0.5f, -1, 2, 0.25f, 1, -3};
    (void)(*t)->Push(keys, grads, nullptr);
    std::string blob;
    if (!(*t)->Serialize(&blob).ok()) continue;
    write("table-" + c.name, '\0', blob);
    write("table-body-" + c.name, '\1', body(blob, virga::ps::internal::kTableHeaderSize, 0));
  }
  KvStore kv;
  (void)kv.Put("job/acks", std::string(16, '\0'));
  (void)kv.Put("job/driver", "lease");
  std::string kv_blob;
  kv.Serialize(&kv_blob);
  write("kv", '\0', kv_blob);
  write("kv-body", '\2', body(kv_blob, 0, 8));
  WorkQueues queues;
  std::vector<std::string> items = {"item 0", "item 1", "item 2"};
  queues.Enqueue("job.items", items);
  queues.Enqueue("other", std::vector<std::string>{"x"});
  (void)queues.Lease("job.items", "w1", std::chrono::milliseconds(10000));
  std::string q_blob;
  queues.Serialize(&q_blob);
  write("queues", '\0', q_blob);
  write("queues-body", '\3', body(q_blob, 0, 8));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("VIRGA_FUZZ_SEEDS"); dir != nullptr && *dir != '\0') {
    WriteSeeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (1 << 20)) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      RestoreTable(rest);
      RestoreKv(rest);
      RestoreQueues(rest);
      break;
    case 1:
      RestoreTable(WithTableHeader(rest));
      break;
    case 2:
      RestoreKv(WithTrailer(rest));
      break;
    case 3:
      RestoreQueues(WithTrailer(rest));
      break;
  }
  return 0;
}
