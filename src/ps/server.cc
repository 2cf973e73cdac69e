#include "ps/server.h"

#include <cinttypes>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace virga::ps {
namespace {

std::string SeqName(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ckpt-%010" PRIu64, seq);
  return buf;
}

}  // namespace

PsServer::PsServer(PsServerOptions options) : options_(std::move(options)) {}

PsServer::~PsServer() { Stop(); }

std::string PsServer::Prefix() const {
  if (!options_.name.empty()) return "checkpoints/" + options_.name + "/";
  const uint16_t p = options_.net.port != 0 ? options_.net.port : port();
  return "checkpoints/ps-" + std::to_string(p) + "/";
}

Status PsServer::Start() {
  if (!options_.checkpoint_uri.empty()) {
    VIRGA_ASSIGN_OR_RETURN(store_, ObjectStore::Open(options_.checkpoint_uri));
  } else if (options_.restore) {
    return Status::InvalidArgument("--restore needs --checkpoint URI");
  }
  rpc_ = std::make_unique<net::RpcServer>(
      options_.net, [this](const net::RequestContext& ctx, const net::FrameHeader& h,
                           std::span<const std::byte> p, Status* st, std::string* reply) {
        return service_.Handle(ctx, h, p, st, reply);
      });
  if (store_) service_.set_checkpoint_fn([this] { return Checkpoint(); });
  // Restore before serving, so no client sees an empty server.
  if (options_.restore && options_.name.empty() && options_.net.port == 0)
    return Status::InvalidArgument("--restore needs a fixed --port or a --name");
  if (options_.restore) {
    auto restored = RestoreLatest();
    if (!restored.ok() && !restored.status().IsNotFound()) return restored.status();
    if (!restored.ok() && options_.restore_required)
      return restored.status().WithContext("--restore-required");
    if (restored.ok()) spdlog::info("restored checkpoint {}{}", Prefix(), *restored);
    else spdlog::info("no checkpoint under {}: starting empty", Prefix());
  }
  VIRGA_RETURN_IF_ERROR(rpc_->Start());
  if (store_ && options_.checkpoint_every.count() > 0) loop_ = std::thread([this] { CheckpointLoop(); });
  return Status::OK();
}

void PsServer::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (rpc_) rpc_->Stop();
}

void PsServer::CheckpointLoop() {
  std::unique_lock lock(loop_mu_);
  while (!loop_cv_.wait_for(lock, options_.checkpoint_every, [this] { return stopping_; })) {
    lock.unlock();
    (void)Checkpoint();  // recorded in the stats, logged
    lock.lock();
  }
}

Result<std::string> PsServer::Checkpoint() {
  if (!store_) return Status::InvalidArgument("no checkpoint store configured (--checkpoint)");
  uint64_t pause_us = 0;
  Result<std::string> id = WriteCheckpoint(&pause_us);
  service_.RecordCheckpoint(id, pause_us);
  if (!id.ok()) spdlog::warn("checkpoint failed: {}", id.status().ToString());
  return id;
}

Result<std::string> PsServer::WriteCheckpoint(uint64_t* pause_us) {
  std::lock_guard lock(ckpt_mu_);
  const std::string prefix = Prefix();
  if (next_seq_ == 1) {  // continue after existing checkpoints
    VIRGA_ASSIGN_OR_RETURN(auto listed, store_->List(prefix));
    for (const auto& o : listed) {
      uint64_t seq = 0;
      if (std::sscanf(o.key.c_str() + prefix.size(), "ckpt-%" SCNu64, &seq) == 1)
        next_seq_ = std::max(next_seq_, seq + 1);
    }
  }
  const std::string id = SeqName(next_seq_++);
  const std::string dir = prefix + id + "/";
  // The cut: every request paused while the state is copied to memory (no
  // I/O under the pause), so tables, KV and queues show the same instant.
  std::vector<std::pair<std::string, std::string>> blobs;
  {
    const auto t0 = std::chrono::steady_clock::now();
    PauseGate::Paused cut(service_.gate());
    for (const auto& t : service_.Tables()) {
      blobs.emplace_back("tables/" + t->config().name, std::string());
      VIRGA_RETURN_IF_ERROR(t->Serialize(&blobs.back().second));
    }
    blobs.emplace_back("kv", std::string());
    service_.kv().Serialize(&blobs.back().second);
    blobs.emplace_back("queues", std::string());
    service_.queues().Serialize(&blobs.back().second);
    *pause_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count());
  }
  nlohmann::json manifest = {{"version", 1}, {"objects", nlohmann::json::array()}};
  for (auto& [key, blob] : blobs) {
    VIRGA_RETURN_IF_ERROR(store_->Put(dir + key, blob));
    manifest["objects"].push_back({{"key", key}, {"bytes", blob.size()}});
    std::string().swap(blob);  // the copy's memory back as soon as it is written
  }
  VIRGA_RETURN_IF_ERROR(store_->Put(dir + "MANIFEST.json", manifest.dump(1)));
  // Keep the two newest committed checkpoints.
  VIRGA_ASSIGN_OR_RETURN(auto listed, store_->List(prefix));
  for (const auto& o : listed) {
    uint64_t seq = 0;
    if (std::sscanf(o.key.c_str() + prefix.size(), "ckpt-%" SCNu64, &seq) == 1 && seq + 2 < next_seq_)
      (void)store_->Delete(o.key);
  }
  return id;
}

Result<std::string> PsServer::RestoreLatest() {
  if (!store_) return Status::InvalidArgument("no checkpoint store configured (--checkpoint)");
  const std::string prefix = Prefix();
  VIRGA_ASSIGN_OR_RETURN(auto listed, store_->List(prefix));
  std::string best;
  for (const auto& o : listed) {
    const std::string rest = o.key.substr(prefix.size());
    if (rest.size() > 14 && rest.substr(rest.size() - 14) == "/MANIFEST.json" &&
        rest.substr(0, rest.size() - 14) > best)
      best = rest.substr(0, rest.size() - 14);
  }
  if (best.empty()) return Status::NotFound("no committed checkpoint under " + prefix);
  const std::string dir = prefix + best + "/";
  std::string text;
  VIRGA_RETURN_IF_ERROR(store_->Get(dir + "MANIFEST.json", &text));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, false);
  if (m.is_discarded() || !m.contains("objects") || !m["objects"].is_array())
    return Status::Corruption(dir + "MANIFEST.json: not a checkpoint manifest");
  std::string blob;
  for (const auto& o : m["objects"]) {
    if (!o.contains("key") || !o["key"].is_string())
      return Status::Corruption(dir + "MANIFEST.json: object without a key");
    const std::string key = o["key"].get<std::string>();
    VIRGA_RETURN_IF_ERROR(store_->Get(dir + key, &blob));
    if (key == "kv") {
      VIRGA_RETURN_IF_ERROR(service_.kv().Restore(blob, dir + key));
    } else if (key == "queues") {
      VIRGA_RETURN_IF_ERROR(service_.queues().Restore(blob, dir + key));
    } else {
      VIRGA_ASSIGN_OR_RETURN(auto t, Table::Restore(blob, dir + key));
      VIRGA_RETURN_IF_ERROR(service_.PutTable(std::move(t)));
    }
  }
  uint64_t seq = 0;
  std::sscanf(best.c_str(), "ckpt-%" SCNu64, &seq);
  {
    std::lock_guard lock(ckpt_mu_);
    next_seq_ = std::max(next_seq_, seq + 1);
  }
  return best;
}

Result<std::string> EmbeddedServerAddress(std::string_view who, const std::string& bind,
                                          const std::string& advertise, uint16_t port) {
  std::string host = advertise.empty() ? bind : advertise;
  std::string port_text;
  if (size_t colon = host.rfind(':'); colon != std::string::npos &&
                                      host.find(']') == std::string::npos &&
                                      host.find(':') == colon) {
    port_text = host.substr(colon + 1);
    host.resize(colon);
  }
  if (host == "0.0.0.0" || host == "::" || host.empty()) {
    return Status::InvalidArgument(std::string(who) + ": the embedded server binds to " + bind +
                                   "; give the address functions reach it at "
                                   "(--server-advertise HOST[:PORT])");
  }
  if (port_text.empty() || port_text == "0") port_text = std::to_string(port);
  return host + ":" + port_text;
}

}  // namespace virga::ps
