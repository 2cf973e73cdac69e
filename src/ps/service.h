// PsService: the parameter server's state (model tables, key-value store,
// work queues) and the request handler that serves it over net::RpcServer.
//
// Requests are handled on the I/O threads directly (no hand-off): tables are
// sharded with their own locks, the table directory is read-mostly (shared
// lock, taken only to find a table), and nothing here blocks on I/O.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "net/rpc.h"
#include "ps/kv_store.h"
#include "ps/pause_gate.h"
#include "ps/table.h"
#include "ps/work_queue.h"
#include "virga/object_store.h"

namespace virga::ps {

class PsService {
 public:
  PsService();

  // The net::Handler for this service.
  net::HandlerAction Handle(const net::RequestContext& ctx, const net::FrameHeader& request,
                            std::span<const std::byte> payload, Status* reply_status,
                            std::string* reply);

  // Direct (in-process) access, used by checkpoints and tests.
  Status CreateTable(const TableConfig& config);
  Status DropTable(std::string_view name);
  std::shared_ptr<Table> FindTable(std::string_view name) const;
  std::vector<std::shared_ptr<Table>> Tables() const;
  Status PutTable(std::unique_ptr<Table> table);  // replaces a table of the same name
  KvStore& kv() { return kv_; }
  WorkQueues& queues() { return queues_; }

  // JSON: tables (name, kind, width, rows, version, pulls, pushes...) and
  // request counters by opcode.
  std::string StatsJson() const;

  // Every state-changing request passes this gate; a checkpoint pauses it to
  // copy tables, KV and queues as one cut (ps/pause_gate.h).
  PauseGate& gate() { return gate_; }

  // The outcome of a checkpoint (id on success, else the error), shown in
  // StatsJson under "checkpoints": written, failed, last (id), last_error
  // (of the latest attempt; "" after a success), last_failure (of the latest
  // failed attempt, kept after a success), pause_us (of the last cut).
  void RecordCheckpoint(const Result<std::string>& outcome, uint64_t pause_us);

  // Called for kCheckpoint requests; null -> "no checkpoint store configured".
  void set_checkpoint_fn(std::function<Result<std::string>()> fn) { checkpoint_fn_ = std::move(fn); }

 private:
  Status Dispatch(uint8_t op, net::PayloadReader& in, std::string* reply);
  Status DoPull(net::PayloadReader& in, std::string* reply);
  Status DoPush(net::PayloadReader& in, std::string* reply);
  Status DoPullState(net::PayloadReader& in, std::string* reply);
  Status DoPushDelta(net::PayloadReader& in, std::string* reply);
  Status DoKv(uint8_t op, net::PayloadReader& in, std::string* reply);
  Status DoQueue(uint8_t op, net::PayloadReader& in, std::string* reply);

  mutable std::shared_mutex tables_mu_;
  std::map<std::string, std::shared_ptr<Table>, std::less<>> tables_;  // GUARDED_BY(tables_mu_)
  KvStore kv_;
  WorkQueues queues_;
  std::function<Result<std::string>()> checkpoint_fn_;
  std::atomic<uint64_t> requests_[256] = {};
  std::atomic<uint64_t> errors_{0};
  PauseGate gate_;
  mutable std::mutex ckpt_mu_;
  struct {
    uint64_t written = 0, failed = 0, pause_us = 0;
    std::string last, last_error, last_failure;
  } ckpt_;  // GUARDED_BY(ckpt_mu_)
};

}  // namespace virga::ps
