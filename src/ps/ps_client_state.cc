// PsClient: key-value, work-queue, dump and checkpoint calls.
#include "ps/ps_client_impl.h"

namespace virga {

Result<uint64_t> PsClient::Put(std::string_view key, std::string_view value) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(key);
  w.Str(value);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(key, num_servers()), Op::kKvPut, p, &r));
  PayloadReader in(r.payload);
  uint64_t version = 0;
  VIRGA_RETURN_IF_ERROR(in.U64(&version));
  return version;
}

Status PsClient::Get(std::string_view key, std::string* value, uint64_t* version) {
  std::string p;
  PayloadWriter(&p).Str(key);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(key, num_servers()), Op::kKvGet, p, &r));
  PayloadReader in(r.payload);
  uint64_t v = 0;
  std::string_view s;
  VIRGA_RETURN_IF_ERROR(in.U64(&v));
  VIRGA_RETURN_IF_ERROR(in.Str(&s, UINT32_MAX));
  value->assign(s);
  if (version) *version = v;
  return Status::OK();
}

Result<bool> PsClient::Delete(std::string_view key) {
  std::string p;
  PayloadWriter(&p).Str(key);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(key, num_servers()), Op::kKvDelete, p, &r));
  PayloadReader in(r.payload);
  uint8_t existed = 0;
  VIRGA_RETURN_IF_ERROR(in.U8(&existed));
  return existed != 0;
}

Result<bool> PsClient::CompareAndSwap(std::string_view key, uint64_t expected,
                                      std::string_view value, uint64_t* current) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(key);
  w.U64(expected);
  w.Str(value);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(key, num_servers()), Op::kKvCas, p, &r));
  PayloadReader in(r.payload);
  uint8_t swapped = 0;
  uint64_t cur = 0;
  VIRGA_RETURN_IF_ERROR(in.U8(&swapped));
  VIRGA_RETURN_IF_ERROR(in.U64(&cur));
  if (current) *current = cur;
  return swapped != 0;
}

Status PsClient::AddFloats(std::string_view key, std::span<const float> delta,
                           std::vector<float>* result) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(key);
  w.Array(delta);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(key, num_servers()), Op::kKvAddFloats, p, &r));
  PayloadReader in(r.payload);
  std::span<const float> out;
  VIRGA_RETURN_IF_ERROR(in.Array(&out, UINT32_MAX));
  if (result) result->assign(out.begin(), out.end());
  return Status::OK();
}

Result<std::vector<uint64_t>> PsClient::Enqueue(std::string_view queue,
                                                std::span<const std::string> payloads) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(queue);
  w.U32(static_cast<uint32_t>(payloads.size()));
  for (const auto& s : payloads) w.Str(s);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueEnqueue, p, &r));
  PayloadReader in(r.payload);
  std::span<const uint64_t> ids;
  VIRGA_RETURN_IF_ERROR(in.Array(&ids, UINT32_MAX));
  return std::vector<uint64_t>(ids.begin(), ids.end());
}

Result<std::optional<QueueLease>> PsClient::Lease(std::string_view queue, std::string_view worker,
                                                  std::chrono::milliseconds timeout) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(queue);
  w.Str(worker);
  w.U32(static_cast<uint32_t>(std::clamp<int64_t>(timeout.count(), 0, UINT32_MAX)));
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueLease, p, &r));
  PayloadReader in(r.payload);
  uint8_t got = 0;
  QueueLease lease;
  std::string_view payload;
  VIRGA_RETURN_IF_ERROR(in.U8(&got));
  VIRGA_RETURN_IF_ERROR(in.U64(&lease.lease_id));
  VIRGA_RETURN_IF_ERROR(in.U64(&lease.item_id));
  VIRGA_RETURN_IF_ERROR(in.U32(&lease.attempt));
  VIRGA_RETURN_IF_ERROR(in.Str(&payload, UINT32_MAX));
  if (!got) return std::optional<QueueLease>();
  lease.payload.assign(payload);
  return std::optional<QueueLease>(std::move(lease));
}

Status PsClient::Ack(std::string_view queue, uint64_t lease_id) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(queue);
  w.U64(lease_id);
  net::Reply r;
  return impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueAck, p, &r);
}

Status PsClient::Release(std::string_view queue, uint64_t lease_id) {
  std::string p;
  PayloadWriter w(&p);
  w.Str(queue);
  w.U64(lease_id);
  net::Reply r;
  return impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueRelease, p, &r);
}

Result<QueueCounts> PsClient::QueueStats(std::string_view queue) {
  std::string p;
  PayloadWriter(&p).Str(queue);
  net::Reply r;
  VIRGA_RETURN_IF_ERROR(impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueStats, p, &r));
  PayloadReader in(r.payload);
  QueueCounts c;
  for (uint64_t* v : {&c.pending, &c.leased, &c.acked, &c.expired, &c.enqueued})
    VIRGA_RETURN_IF_ERROR(in.U64(v));
  return c;
}

Status PsClient::DumpTable(std::string_view table,
                           std::vector<std::pair<uint64_t, std::vector<float>>>* rows) {
  rows->clear();
  std::string p;
  PayloadWriter(&p).Str(table);
  for (size_t s = 0; s < num_servers(); ++s) {
    net::Reply r;
    VIRGA_RETURN_IF_ERROR(impl_->Call(s, Op::kDumpTable, p, &r));
    PayloadReader in(r.payload);
    std::string_view blob;
    VIRGA_RETURN_IF_ERROR(in.Str(&blob, UINT32_MAX));
    VIRGA_ASSIGN_OR_RETURN(auto t, ps::Table::Restore(blob, impl_->conns[s].rpc->address()));
    t->ForEach([rows](uint64_t key, std::span<const float> w) {
      rows->emplace_back(key, std::vector<float>(w.begin(), w.end()));
    });
  }
  std::sort(rows->begin(), rows->end());
  return Status::OK();
}

Result<std::vector<std::string>> PsClient::Checkpoint() {
  std::vector<std::string> ids;
  for (size_t s = 0; s < num_servers(); ++s) {
    net::Reply r;
    VIRGA_RETURN_IF_ERROR(impl_->Call(s, Op::kCheckpoint, std::string(), &r));
    PayloadReader in(r.payload);
    std::string_view id;
    VIRGA_RETURN_IF_ERROR(in.Str(&id, UINT32_MAX));
    ids.emplace_back(id);
  }
  return ids;
}

}  // namespace virga

namespace virga {

Result<std::vector<std::optional<std::string>>> PsClient::MultiGet(
    std::span<const std::string> keys) {
  const size_t n = num_servers();
  std::vector<std::optional<std::string>> out(keys.size());
  for (size_t s = 0; s < n; ++s) {
    std::vector<size_t> mine;
    for (size_t i = 0; i < keys.size(); ++i)
      if (ServerOfName(keys[i], n) == s) mine.push_back(i);
    if (mine.empty()) continue;
    std::string p;
    PayloadWriter w(&p);
    w.U32(static_cast<uint32_t>(mine.size()));
    for (size_t i : mine) w.Str(keys[i]);
    net::Reply r;
    VIRGA_RETURN_IF_ERROR(impl_->Call(s, Op::kKvMultiGet, p, &r));
    PayloadReader in(r.payload);
    for (size_t i : mine) {
      uint8_t present = 0;
      std::string_view v;
      VIRGA_RETURN_IF_ERROR(in.U8(&present));
      VIRGA_RETURN_IF_ERROR(in.Str(&v, UINT32_MAX));
      if (present) out[i] = std::string(v);
    }
  }
  return out;
}

}  // namespace virga
