// PsClient: key-value, work-queue, dump/load and checkpoint calls.
#include "ps/ps_client_impl.h"

#include <cstring>

#include "ps/table_internal.h"
#include "ps/table_serialize.h"

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

Status PsClient::Renew(std::string_view queue, uint64_t lease_id,
                       std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0)
    return Status::InvalidArgument("renew of lease " + std::to_string(lease_id) + ": timeout " +
                                   std::to_string(timeout.count()) + " ms <= 0");
  std::string p;
  PayloadWriter w(&p);
  w.Str(queue);
  w.U64(lease_id);
  w.U32(static_cast<uint32_t>(std::min<int64_t>(timeout.count(), UINT32_MAX)));
  net::Reply r;
  return impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueRenew, p, &r);
}

Status PsClient::DropQueue(std::string_view queue) {
  std::string p;
  PayloadWriter(&p).Str(queue);
  net::Reply r;
  return impl_->Call(ServerOfName(queue, num_servers()), Op::kQueueDrop, p, &r);
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
    // The rows read in place (ParseTable checked their sizes), no table
    // rebuilt: sparse rows carry their key, dense ones are in key order. A
    // dense table exists whole on every server, but each key is served by one:
    // take every key from its owner only. A duplicate is caught after the sort.
    VIRGA_ASSIGN_OR_RETURN(ps::internal::ParsedTable parsed,
                           ps::internal::ParseTable(blob, impl_->conns[s].rpc->address()));
    const bool keyed = parsed.config.kind == TableKind::kSparse;
    const uint32_t width = parsed.config.width;
    const size_t key_bytes = keyed ? sizeof(uint64_t) : 0;
    const size_t stride =
        key_bytes + size_t{ps::internal::RowFloats(parsed.config)} * sizeof(float);
    const size_t n = num_servers();
    if (keyed) rows->reserve(rows->size() + parsed.rows);
    for (uint64_t r = 0; r < parsed.rows; ++r) {
      const char* at = parsed.payload.data() + r * stride;
      uint64_t key = r;
      if (keyed) std::memcpy(&key, at, sizeof key);
      if (ServerOfKey(key, n) != s) continue;
      std::vector<float> w(width);
      std::memcpy(w.data(), at + key_bytes, width * sizeof(float));
      rows->emplace_back(key, std::move(w));
    }
  }
  std::sort(rows->begin(), rows->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < rows->size(); ++i) {
    if ((*rows)[i].first == (*rows)[i - 1].first) {
      return Status::Corruption("table '" + std::string(table) + "': key " +
                                std::to_string((*rows)[i].first) + " dumped twice");
    }
  }
  return Status::OK();
}

namespace {

// Checks LoadTable's rows: widths, dense key range, no duplicate key.
Status CheckLoadRows(const TableConfig& c,
                     std::span<const std::pair<uint64_t, std::vector<float>>> rows) {
  std::vector<uint64_t> keys;
  keys.reserve(rows.size());
  for (const auto& [key, w] : rows) {
    if (w.size() != c.width)
      return Status::InvalidArgument("load table '" + c.name + "': key " + std::to_string(key) +
                                     " has " + std::to_string(w.size()) + " floats, width is " +
                                     std::to_string(c.width));
    if (c.kind == TableKind::kDense && key >= c.dense_rows)
      return Status::InvalidArgument("load table '" + c.name + "': key " + std::to_string(key) +
                                     " >= dense_rows " + std::to_string(c.dense_rows));
    keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end())
    return Status::InvalidArgument("load table '" + c.name + "': duplicate key " +
                                   std::to_string(*dup));
  return Status::OK();
}

// Appends server `s`'s share of `rows` to *out as a LOAD_TABLE payload: a
// length-prefixed serialized table (ps/table_serialize.h) written in place.
Status EncodeLoad(const TableConfig& c, std::span<const std::pair<uint64_t, std::vector<float>>> rows,
                  size_t s, size_t n, std::string* out) {
  const size_t row_floats = ps::internal::RowFloats(c);
  const bool dense = c.kind == TableKind::kDense;
  size_t mine = 0;
  for (const auto& r : rows) mine += ServerOfKey(r.first, n) == s;
  const uint64_t row_count = dense ? c.dense_rows : mine;
  const uint64_t bytes = row_count * (row_floats * sizeof(float) + (dense ? 0 : sizeof(uint64_t)));
  if (bytes > PsClient::kMaxLoadBytes)
    return Status::ResourceExhausted("load table '" + c.name + "': " + std::to_string(bytes) +
                                     " bytes for one server, over the " +
                                     std::to_string(PsClient::kMaxLoadBytes) + " byte limit");
  out->clear();
  out->reserve(bytes + 4096);
  out->append(4, '\0');  // the u32 length of the serialized table, patched below
  ps::internal::TableWriter tw(c, /*version=*/0, out);
  std::vector<float> row(row_floats);
  if (dense) {
    // Every row: its initial value, overwritten by the given weights of the
    // keys this server owns.
    std::vector<float> all(c.dense_rows * row_floats);
    for (uint64_t k = 0; k < c.dense_rows; ++k) ps::internal::InitRow(c, k, &all[k * row_floats]);
    for (const auto& [key, w] : rows)
      if (ServerOfKey(key, n) == s) std::memcpy(&all[key * row_floats], w.data(), c.width * sizeof(float));
    tw.AddRows(all.data(), all.size(), c.dense_rows);
  } else {
    for (const auto& [key, w] : rows) {
      if (ServerOfKey(key, n) != s) continue;
      ps::internal::InitRow(c, key, row.data());
      std::memcpy(row.data(), w.data(), c.width * sizeof(float));
      tw.AddKeyedRow(key, row.data(), static_cast<uint32_t>(row_floats));
    }
  }
  tw.Finish();
  const auto len = static_cast<uint32_t>(out->size() - 4);
  std::memcpy(out->data(), &len, 4);
  return Status::OK();
}

}  // namespace

Status PsClient::LoadTable(const TableConfig& config,
                           std::span<const std::pair<uint64_t, std::vector<float>>> rows) {
  VIRGA_RETURN_IF_ERROR(config.Validate());
  VIRGA_RETURN_IF_ERROR(CheckLoadRows(config, rows));
  std::string p;
  for (size_t s = 0; s < num_servers(); ++s) {
    VIRGA_RETURN_IF_ERROR(EncodeLoad(config, rows, s, num_servers(), &p));
    net::Reply r;
    VIRGA_RETURN_IF_ERROR(impl_->Call(s, Op::kLoadTable, p, &r));
  }
  return Status::OK();
}

uint64_t PsClient::bytes_sent() const {
  uint64_t n = 0;
  for (const auto& c : impl_->conns) n += c.rpc ? c.rpc->bytes_sent() : 0;
  return n;
}

uint64_t PsClient::bytes_received() const {
  uint64_t n = 0;
  for (const auto& c : impl_->conns) n += c.rpc ? c.rpc->bytes_received() : 0;
  return n;
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
