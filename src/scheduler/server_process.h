// ServerProcess: a job's parameter server as a child process (`virga server`)
// that the job driver restarts from its last checkpoint when it dies.
//
// The server listens on 127.0.0.1 (or `bind`) at a port fixed at the first
// start, so functions reconnect to the same address after a restart; it
// checkpoints every `checkpoint_every` to `checkpoint_uri` under
// checkpoints/<name>/ (one cut: ps/server.h), and a restart restores the
// latest one (--restore). Its token is in a 0600 file of a private (0700)
// directory, with its stdout and stderr; the directory goes at destruction.
// The child gets SIGKILL when the driver dies (PR_SET_PDEATHSIG). The kernel
// sends it when the *thread* that forked the child ends, so children are
// forked by a thread of this object's own, which lives as long as it does
// (a job may restart its server from a thread that ends before the job).
//
// Not thread-safe: one owner (the job's scheduler thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "backend/spawn.h"

#include "virga/status.h"

namespace virga::sched {

struct ServerProcessOptions {
  std::string binary;                          // the `virga` executable
  std::string bind = "127.0.0.1";              // address it listens on
  std::string token;                           // its shared secret
  std::string checkpoint_uri;                  // object store of its checkpoints
  std::string name;                            // checkpoint prefix (the job id)
  std::chrono::milliseconds checkpoint_every{5000};  // > 0
  std::chrono::milliseconds ready_timeout{20'000};  // to answer after a (re)start
  std::string tls_cert_file, tls_key_file;     // TLS: its certificate and key (paths)
  std::string tls_ca_pem;                      // TLS: the CA its readiness check trusts
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerProcessOptions options) : o_(std::move(options)) {}
  ~ServerProcess();  // SIGTERM, then SIGKILL after 2 s; reaped; files removed
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts it (restoring the latest checkpoint when `restore`) and waits until
  // it answers. The port is chosen at the first start and kept. With
  // `restore`, a server that finds no committed checkpoint exits (an error
  // here) rather than serving an empty state.
  Status Start(bool restore);
  // True while the child runs. Reaps it once it has ended.
  bool Alive();
  // Starts a replacement from the latest checkpoint (Alive() must be false).
  Status Restart() { return Start(/*restore=*/true); }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return o_.bind + ":" + std::to_string(port_); }
  uint32_t restarts() const { return starts_ > 0 ? starts_ - 1 : 0; }
  // The end of its stderr (for messages when it cannot start).
  std::string ErrorTail() const;

 private:
  Status WaitReady();
  void Stop();
  // Runs SpawnProcess(spec) on spawner_ and returns its result.
  Result<pid_t> SpawnOnOwnThread(const backend::SpawnSpec& spec);
  void SpawnerLoop();

  const ServerProcessOptions o_;
  std::string dir_;  // private: token, logs
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  uint32_t starts_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  const backend::SpawnSpec* request_ = nullptr;  // GUARDED_BY(mu_)
  std::optional<Result<pid_t>> reply_;            // GUARDED_BY(mu_)
  bool quit_ = false;                             // GUARDED_BY(mu_)
  std::thread spawner_;                           // started at the first Start
};

}  // namespace virga::sched
