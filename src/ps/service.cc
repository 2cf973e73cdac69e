#include "ps/service.h"

#include <cstring>
#include <mutex>

#include <nlohmann/json.hpp>

#include "ps/protocol.h"
#include "ps/replica.h"

namespace virga::ps {

using net::PayloadReader;
using net::PayloadWriter;

namespace {

// Payload decoding faults (PayloadReader errors name an offset) and unknown
// opcodes mean a broken or hostile peer: the connection is closed. Other
// errors (no such table, bad config value...) are ordinary replies.
bool IsProtocolFault(const Status& s) {
  if (!s.IsInvalidArgument()) return false;
  const std::string& m = s.message();
  return m.find("offset") != std::string::npos || m.find("unexpected bytes") != std::string::npos ||
         m.rfind("unknown opcode", 0) == 0 || m.rfind("truncated", 0) == 0;
}

}  // namespace

PsService::PsService() = default;

Status PsService::CreateTable(const TableConfig& config) {
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<Table> t, Table::Create(config));
  std::unique_lock lock(tables_mu_);
  if (tables_.count(config.name))
    return Status::AlreadyExists("table '" + config.name + "' already exists");
  tables_.emplace(config.name, std::move(t));
  return Status::OK();
}

Status PsService::DropTable(std::string_view name) {
  std::unique_lock lock(tables_mu_);
  auto it = tables_.find(name);
  if (it == tables_.end()) return Status::NotFound("table '" + std::string(name) + "' not found");
  tables_.erase(it);
  return Status::OK();
}

Status PsService::PutTable(std::unique_ptr<Table> table) {
  std::string name = table->config().name;
  std::unique_lock lock(tables_mu_);
  tables_[name] = std::move(table);
  return Status::OK();
}

std::shared_ptr<Table> PsService::FindTable(std::string_view name) const {
  std::shared_lock lock(tables_mu_);
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Table>> PsService::Tables() const {
  std::shared_lock lock(tables_mu_);
  std::vector<std::shared_ptr<Table>> out;
  for (const auto& [name, t] : tables_) out.push_back(t);
  return out;
}

std::string PsService::StatsJson() const {
  nlohmann::json j;
  j["tables"] = nlohmann::json::array();
  for (const auto& t : Tables()) {
    TableStats s = t->stats();
    const TableConfig& c = t->config();
    j["tables"].push_back({{"name", c.name},
                           {"kind", c.kind == TableKind::kSparse ? "sparse" : "dense"},
                           {"width", c.width},
                           {"optimizer", OptimizerName(c.optimizer.kind)},
                           {"rows", s.rows},
                           {"bytes", s.bytes},
                           {"version", s.version},
                           {"pulls", s.pulls},
                           {"pushes", s.pushes},
                           {"keys_pulled", s.keys_pulled},
                           {"keys_pushed", s.keys_pushed}});
  }
  nlohmann::json req = nlohmann::json::object();
  uint64_t total = 0;
  for (int op = 0; op < 256; ++op) {
    uint64_t n = requests_[op].load(std::memory_order_relaxed);
    if (n) req[std::to_string(op)] = n;
    total += n;
  }
  j["requests"] = req;
  j["requests_total"] = total;
  j["errors"] = errors_.load(std::memory_order_relaxed);
  j["kv_keys"] = kv_.size();
  j["kv_bytes"] = kv_.total_bytes();
  j["queues"] = queues_.List();
  {
    std::lock_guard<std::mutex> l(ckpt_mu_);
    j["checkpoints"] = {{"written", ckpt_.written}, {"failed", ckpt_.failed},
                        {"last", ckpt_.last},       {"last_error", ckpt_.last_error},
                        {"last_failure", ckpt_.last_failure}, {"pause_us", ckpt_.pause_us}};
  }
  // Queue names and keys are client bytes: invalid UTF-8 is replaced, never thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void PsService::RecordCheckpoint(const Result<std::string>& outcome, uint64_t pause_us) {
  std::lock_guard<std::mutex> l(ckpt_mu_);
  if (outcome.ok()) {
    ++ckpt_.written;
    ckpt_.last = *outcome;
    ckpt_.last_error.clear();
    ckpt_.pause_us = pause_us;
  } else {
    ++ckpt_.failed;
    ckpt_.last_error = ckpt_.last_failure = outcome.status().ToString();
  }
}

net::HandlerAction PsService::Handle(const net::RequestContext&, const net::FrameHeader& request,
                                     std::span<const std::byte> payload, Status* reply_status,
                                     std::string* reply) {
  requests_[request.opcode].fetch_add(1, std::memory_order_relaxed);
  PayloadReader in(payload);
  // A checkpoint request pauses the gate itself; stats change no state.
  const auto op = static_cast<Op>(request.opcode);
  const bool gated = op != Op::kCheckpoint && op != Op::kPing && op != Op::kListTables;
  if (gated) gate_.Enter();
  Status s = Dispatch(request.opcode, in, reply);
  if (gated) gate_.Exit();
  if (s.ok()) s = in.ExpectEnd();
  if (!s.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    reply->clear();
    // A payload that does not parse is a protocol fault: drop the peer.
    if (IsProtocolFault(s))
      return net::HandlerAction::kCloseConnection;
  }
  *reply_status = std::move(s);
  return net::HandlerAction::kReply;
}

Status PsService::Dispatch(uint8_t op, PayloadReader& in, std::string* reply) {
  PayloadWriter out(reply);
  switch (static_cast<Op>(op)) {
    case Op::kPull: return DoPull(in, reply);
    case Op::kPush: return DoPush(in, reply);
    case Op::kPullState: return DoPullState(in, reply);
    case Op::kPushDelta: return DoPushDelta(in, reply);
    case Op::kPing: {
      out.Str(StatsJson());
      return Status::OK();
    }
    case Op::kCreateTable: {
      TableConfig c;
      VIRGA_RETURN_IF_ERROR(DecodeTableConfig(&in, &c));
      VIRGA_RETURN_IF_ERROR(in.ExpectEnd());
      return CreateTable(c);
    }
    case Op::kDropTable: {
      std::string_view name;
      VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
      return DropTable(name);
    }
    case Op::kListTables: {
      out.Str(StatsJson());
      return Status::OK();
    }
    case Op::kDumpTable: {
      std::string_view name;
      VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
      auto t = FindTable(name);
      if (!t) return Status::NotFound("table '" + std::string(name) + "' not found");
      std::string blob;
      VIRGA_RETURN_IF_ERROR(t->Serialize(&blob));
      out.Str(blob);
      return Status::OK();
    }
    case Op::kLoadTable: {
      std::string_view blob;
      VIRGA_RETURN_IF_ERROR(in.Str(&blob, UINT32_MAX));
      VIRGA_ASSIGN_OR_RETURN(auto t, Table::Restore(blob, "load request"));
      return PutTable(std::move(t));
    }
    case Op::kCheckpoint: {
      if (!checkpoint_fn_) return Status::InvalidArgument("no checkpoint store configured (--checkpoint)");
      VIRGA_ASSIGN_OR_RETURN(std::string id, checkpoint_fn_());
      out.Str(id);
      return Status::OK();
    }
    default:
      if (op >= 10 && op < 20) return DoKv(op, in, reply);
      if (op >= 20 && op < 30) return DoQueue(op, in, reply);
      return Status::InvalidArgument("unknown opcode " + std::to_string(op));
  }
}

Status PsService::DoPull(PayloadReader& in, std::string* reply) {
  std::string_view name;
  std::span<const uint64_t> keys;
  VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
  VIRGA_RETURN_IF_ERROR(in.Array(&keys, kMaxKeysPerRequest));
  auto t = FindTable(name);
  if (!t) return Status::NotFound("table '" + std::string(name) + "' not found");
  const size_t n = keys.size() * t->config().width;
  // Reply: u64 version, u32 count, f32[count]; rows are pulled straight into
  // the reply buffer (offset 12 is 4-byte aligned).
  reply->resize(12 + n * sizeof(float));
  uint64_t version = 0;
  auto* rows = reinterpret_cast<float*>(reply->data() + 12);
  VIRGA_RETURN_IF_ERROR(t->Pull(keys, std::span<float>(rows, n), &version));
  const auto count = static_cast<uint32_t>(n);
  std::memcpy(reply->data(), &version, 8);
  std::memcpy(reply->data() + 8, &count, 4);
  return Status::OK();
}

Status PsService::DoPush(PayloadReader& in, std::string* reply) {
  std::string_view name;
  std::span<const uint64_t> keys;
  std::span<const float> grads;
  VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
  VIRGA_RETURN_IF_ERROR(in.Array(&keys, kMaxKeysPerRequest));
  VIRGA_RETURN_IF_ERROR(in.Array(&grads, kMaxKeysPerRequest * 64u));
  auto t = FindTable(name);
  if (!t) return Status::NotFound("table '" + std::string(name) + "' not found");
  uint64_t version = 0;
  VIRGA_RETURN_IF_ERROR(t->Push(keys, grads, &version));
  PayloadWriter(reply).U64(version);
  return Status::OK();
}

Status PsService::DoPullState(PayloadReader& in, std::string* reply) {
  std::string_view name;
  thread_local std::vector<uint64_t> keys;  // decoded packed keys, storage reused
  VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
  VIRGA_RETURN_IF_ERROR(DecodePackedKeys(&in, &keys, kMaxKeysPerRequest));
  auto t = FindTable(name);
  if (!t) return Status::NotFound("table '" + std::string(name) + "' not found");
  const size_t n = keys.size() * ReplicaRowFloats(t->config());
  // Reply as a pull's: u64 version, u32 count, f32[count], written in place.
  reply->resize(12 + n * sizeof(float));
  uint64_t version = 0;
  auto* rows = reinterpret_cast<float*>(reply->data() + 12);
  VIRGA_RETURN_IF_ERROR(t->PullState(keys, std::span<float>(rows, n), &version));
  const auto count = static_cast<uint32_t>(n);
  std::memcpy(reply->data(), &version, 8);
  std::memcpy(reply->data() + 8, &count, 4);
  return Status::OK();
}

Status PsService::DoPushDelta(PayloadReader& in, std::string* reply) {
  std::string_view name;
  uint32_t steps = 0;
  thread_local std::vector<uint64_t> keys;
  std::span<const float> deltas;
  VIRGA_RETURN_IF_ERROR(in.Str(&name, kMaxNameBytes));
  VIRGA_RETURN_IF_ERROR(in.U32(&steps));
  VIRGA_RETURN_IF_ERROR(DecodePackedKeys(&in, &keys, kMaxKeysPerRequest));
  VIRGA_RETURN_IF_ERROR(in.Array(&deltas, kMaxKeysPerRequest * 64u));
  auto t = FindTable(name);
  if (!t) return Status::NotFound("table '" + std::string(name) + "' not found");
  uint64_t version = 0;
  VIRGA_RETURN_IF_ERROR(t->PushDelta(keys, deltas, steps, &version));
  PayloadWriter(reply).U64(version);
  return Status::OK();
}

}  // namespace virga::ps
