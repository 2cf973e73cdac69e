#include "virga/ps_client.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include <nlohmann/json.hpp>

#include "net/rpc.h"
#include "ps/protocol.h"
#include "ps/ps_client_impl.h"

namespace virga {

using net::PayloadReader;
using net::PayloadWriter;
using ps::Op;

PsClient::PsClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PsClient::~PsClient() = default;
size_t PsClient::num_servers() const { return impl_->conns.size(); }

Result<std::vector<std::string>> ParseServerList(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    size_t colon = item.rfind(':');
    if (item.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == item.size() ||
        item.substr(colon + 1).find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(item.substr(colon + 1))) > 65535) {
      return Status::InvalidArgument("bad server address '" + std::string(item) +
                                     "' (expected host:port)");
    }
    out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

Result<std::unique_ptr<PsClient>> PsClient::Connect(const PsClientOptions& options) {
  if (options.servers.empty()) return Status::InvalidArgument("no servers given");
  auto impl = std::make_unique<Impl>();
  net::ClientOptions co;
  co.token = options.token;
  co.connect_timeout = options.connect_timeout;
  co.call_timeout = options.call_timeout;
  co.connect_attempts = options.connect_attempts;
  co.spin = options.spin;
  co.tls_ca_pem = options.tls_ca_pem;
  for (const std::string& addr : options.servers) {
    VIRGA_ASSIGN_OR_RETURN(auto parsed, ParseServerList(addr));
    const std::string& a = parsed[0];
    size_t colon = a.rfind(':');
    VIRGA_ASSIGN_OR_RETURN(auto rpc, net::RpcClient::Connect(
                                         a.substr(0, colon),
                                         static_cast<uint16_t>(std::stoul(a.substr(colon + 1))), co));
    Conn c;
    c.rpc = std::move(rpc);
    impl->conns.push_back(std::move(c));
  }
  return std::unique_ptr<PsClient>(new PsClient(std::move(impl)));
}

Status PsClient::CreateTable(const TableConfig& config) {
  VIRGA_RETURN_IF_ERROR(config.Validate());
  std::string payload;
  PayloadWriter w(&payload);
  ps::EncodeTableConfig(config, &w);
  net::Reply reply;
  for (size_t s = 0; s < impl_->conns.size(); ++s)
    VIRGA_RETURN_IF_ERROR(impl_->Call(s, Op::kCreateTable, payload, &reply));
  return Status::OK();
}

Status PsClient::DropTable(std::string_view name) {
  std::string payload;
  PayloadWriter(&payload).Str(name);
  net::Reply reply;
  Status first;
  for (size_t s = 0; s < impl_->conns.size(); ++s) {
    Status st = impl_->Call(s, Op::kDropTable, payload, &reply);
    if (first.ok()) first = st;
  }
  return first;
}

Result<std::string> PsClient::ServerStats(size_t i) {
  if (i >= impl_->conns.size()) return Status::OutOfRange("no server " + std::to_string(i));
  net::Reply reply;
  VIRGA_RETURN_IF_ERROR(impl_->Call(i, Op::kPing, std::string(), &reply));
  PayloadReader in(reply.payload);
  std::string_view json;
  VIRGA_RETURN_IF_ERROR(in.Str(&json, UINT32_MAX));
  return std::string(json);
}

Status PsClient::StartPull(std::string_view table, std::span<const uint64_t> keys,
                           std::span<float> out, bool with_next) {
  return StartPullOp(static_cast<uint8_t>(Op::kPull), table, keys, out, with_next);
}

Status PsClient::StartPullState(std::string_view table, std::span<const uint64_t> keys,
                                std::span<float> out, bool with_next) {
  return StartPullOp(static_cast<uint8_t>(Op::kPullState), table, keys, out, with_next);
}

Status PsClient::StartPullOp(uint8_t opcode, std::string_view table,
                             std::span<const uint64_t> keys, std::span<float> out, bool with_next) {
  const auto op = static_cast<Op>(opcode);
  Impl& m = *impl_;
  if (m.pull_active) return Status::InvalidArgument("a pull is already in flight");
  if (keys.empty() || out.size() % keys.size() != 0)
    return Status::InvalidArgument("pull: out has " + std::to_string(out.size()) +
                                   " floats for " + std::to_string(keys.size()) + " keys");
  if (keys.size() > UINT32_MAX)
    return Status::InvalidArgument("pull: " + std::to_string(keys.size()) + " keys (max 2^32 - 1)");
  m.pull_out = out;
  m.pull_width = out.size() / keys.size();
  m.pull_version = UINT64_MAX;
  m.pull_status = Status::OK();
  m.pull_active = true;
  Status st;
  if (m.conns.size() == 1) {
    st = m.SendKeys(0, op, table, keys, {}, m.pull_width, 0, with_next);
  } else {
    m.Split(keys, /*pull=*/true);
    for (size_t s = 0; s < m.conns.size() && st.ok(); ++s) {
      if (m.conns[s].pull_keys.empty()) continue;
      st = m.SendKeys(s, op, table, m.conns[s].pull_keys, {}, m.pull_width, 0, with_next);
    }
  }
  // A pull that could not be sent whole is over: collect what was sent, so
  // no reply lands in `out` after this returns.
  if (!st.ok()) (void)FinishPull();
  return st;
}

Status PsClient::FinishPull(uint64_t* version) {
  Impl& m = *impl_;
  if (!m.pull_active) return Status::InvalidArgument("no pull in flight");
  Status st;
  // Held requests to servers this pull skipped go out now, not at some later call.
  for (size_t s = 0; s < m.conns.size() && st.ok(); ++s) {
    if (m.conns[s].rpc && m.conns[s].rpc->held()) st = m.Note(s, m.conns[s].rpc->SendHeld());
  }
  for (size_t s = 0; s < m.conns.size(); ++s) {
    // Replies come in order: drain until this connection's last pull chunk is consumed.
    auto& q = m.conns[s].pending;
    auto has_pull = [&q] {
      return std::any_of(q.begin(), q.end(), [](const PendingOp& p) { return p.kind == PendingOp::kPull; });
    };
    while (st.ok() && has_pull()) st = m.ConsumeOne(s);
  }
  m.pull_active = false;
  VIRGA_RETURN_IF_ERROR(st);
  if (version) *version = m.pull_version == UINT64_MAX ? 0 : m.pull_version;
  return m.pull_status;
}

Status PsClient::Pull(std::string_view table, std::span<const uint64_t> keys, std::span<float> out,
                      uint64_t* version) {
  if (keys.empty()) return Status::OK();
  VIRGA_RETURN_IF_ERROR(StartPull(table, keys, out));
  return FinishPull(version);
}

Status PsClient::StartPush(std::string_view table, std::span<const uint64_t> keys,
                           std::span<const float> grads, bool with_next) {
  return StartPushOp(static_cast<uint8_t>(Op::kPush), table, keys, grads, 1, with_next);
}

Status PsClient::StartPushDelta(std::string_view table, std::span<const uint64_t> keys,
                                std::span<const float> deltas, uint32_t steps, bool with_next) {
  if (steps == 0) return Status::InvalidArgument("push delta: 0 steps");
  return StartPushOp(static_cast<uint8_t>(Op::kPushDelta), table, keys, deltas, steps, with_next);
}

Status PsClient::StartPushOp(uint8_t opcode, std::string_view table,
                             std::span<const uint64_t> keys, std::span<const float> grads,
                             uint32_t steps, bool with_next) {
  const auto op = static_cast<Op>(opcode);
  Impl& m = *impl_;
  m.push_steps = steps;
  if (keys.empty()) return Status::OK();
  if (grads.size() % keys.size() != 0)
    return Status::InvalidArgument("push: " + std::to_string(grads.size()) + " gradients for " +
                                   std::to_string(keys.size()) + " keys");
  if (keys.size() > UINT32_MAX)
    return Status::InvalidArgument("push: " + std::to_string(keys.size()) + " keys (max 2^32 - 1)");
  const size_t w = grads.size() / keys.size();
  if (m.conns.size() == 1) return m.SendKeys(0, op, table, keys, grads, w, 0, with_next);
  m.Split(keys, /*pull=*/false);
  for (size_t s = 0; s < m.conns.size(); ++s) {
    Conn& c = m.conns[s];
    if (c.push_keys.empty()) continue;
    c.grads.resize(c.push_pos.size() * w);
    for (size_t i = 0; i < c.push_pos.size(); ++i)
      std::memcpy(&c.grads[i * w], &grads[size_t{c.push_pos[i]} * w], w * sizeof(float));
    VIRGA_RETURN_IF_ERROR(m.SendKeys(s, op, table, c.push_keys, c.grads, w, 0, with_next));
  }
  return Status::OK();
}

Status PsClient::Push(std::string_view table, std::span<const uint64_t> keys,
                      std::span<const float> grads) {
  VIRGA_RETURN_IF_ERROR(StartPush(table, keys, grads));
  return Flush();
}

Status PsClient::Flush() {
  Impl& m = *impl_;
  for (size_t s = 0; s < m.conns.size(); ++s) VIRGA_RETURN_IF_ERROR(m.DrainAll(s));
  Status st = m.push_status;
  m.push_status = Status::OK();
  return st;
}

}  // namespace virga
