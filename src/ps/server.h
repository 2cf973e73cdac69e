// PsServer: a parameter server ready to run in-process (tests, the embedded
// default) or as `virga server`: PsService + RpcServer + periodic
// checkpoints to an object store.
//
// Checkpoints (crash-consistent: complete or absent):
//   checkpoints/<name>/ckpt-<seq:010>/tables/<table>   Table::Serialize
//   checkpoints/<name>/ckpt-<seq:010>/kv               KvStore::Serialize
//   checkpoints/<name>/ckpt-<seq:010>/queues           WorkQueues::Serialize
//   checkpoints/<name>/ckpt-<seq:010>/MANIFEST.json    written last (the commit point)
// Restore takes the highest sequence whose MANIFEST exists. The two newest
// checkpoints are kept.
//
// A checkpoint is one cut of tables, KV and queues (pause-and-copy): every
// state-changing request is held at the service's PauseGate while the state
// is serialized to memory, then the copies are written with requests flowing
// again. The pause costs a memory copy of the state (milliseconds for
// millions of rows; its length is in the stats as checkpoints.pause_us) and
// transiently that much memory; no I/O happens under it. Items leased at the
// cut are saved as pending, so on restore every item acked after the cut, or
// leased at it, is back in its queue, and a job's per-item counts in the KV
// match the queue (docs/training.md, "Faults").
//
// Every outcome is recorded in the service's stats ("checkpoints": written,
// failed, last, last_error), so `virga ping`, the job's result and the
// dashboard see a checkpoint that could not be written.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/rpc.h"
#include "ps/service.h"
#include "virga/object_store.h"

namespace virga::ps {

struct PsServerOptions {
  net::ServerOptions net;                       // bind, port, threads, token, caps, spin
  std::string checkpoint_uri;                   // empty: no checkpoints
  std::string name;                             // checkpoint prefix; default "ps-<port>"
  std::chrono::milliseconds checkpoint_every{0};     // 0: only on request
  bool restore = false;                         // load the latest checkpoint at Start
  // With restore: no committed checkpoint (none yet, or the store shows none
  // just now) fails Start instead of starting empty. A restarted job server
  // must never come back without the job's state.
  bool restore_required = false;
};

class PsServer {
 public:
  explicit PsServer(PsServerOptions options);
  ~PsServer();
  Status Start();
  void Stop();
  uint16_t port() const { return rpc_ ? rpc_->port() : 0; }
  PsService& service() { return service_; }
  net::ServerCounters counters() const { return rpc_->counters(); }

  // Writes a checkpoint now; returns its id ("ckpt-0000000003").
  Result<std::string> Checkpoint();
  // Loads the latest checkpoint; NotFound if there is none.
  Result<std::string> RestoreLatest();

 private:
  void CheckpointLoop();
  Result<std::string> WriteCheckpoint(uint64_t* pause_us);
  std::string Prefix() const;

  PsServerOptions options_;
  PsService service_;
  std::unique_ptr<net::RpcServer> rpc_;
  std::shared_ptr<ObjectStore> store_;
  std::mutex ckpt_mu_;  // one checkpoint at a time
  uint64_t next_seq_ = 1;  // GUARDED_BY(ckpt_mu_)
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;  // GUARDED_BY(loop_mu_)
  std::thread loop_;
};

// The "host:port" functions reach an embedded server at: `advertise`
// ("HOST" or "HOST:PORT") if given, else `bind`, with `port` (the port it
// listens on) where none or 0 is given. InvalidArgument, prefixed with `who`,
// when that host is a wildcard address (0.0.0.0, ::) that functions cannot
// connect to.
Result<std::string> EmbeddedServerAddress(std::string_view who, const std::string& bind,
                                          const std::string& advertise, uint16_t port);

}  // namespace virga::ps
