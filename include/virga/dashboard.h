// The live dashboard: an HTTP server that shows the jobs of a job registry
// (TrainOptions::registry_dir) in a browser and lets its user kill them.
//
// It serves the page (HTML, JS with the uPlot charting library, CSS; all
// embedded into the binary at build time), a JSON API the page uses (and
// scripts may), and Prometheus text at /metrics (docs/dashboard.md lists
// every route and metric). It reads only the registry: jobs of any process
// (`virga train`, `virga search`, the Python API) appear as they register.
//
// Security: every request must carry the dashboard's token, as `?token=T`
// (the printed URL; the page then keeps it in a cookie named after the port),
// `Authorization: Bearer T`, or `X-Virga-Token: T`; anything else gets 401.
// A POST whose Origin header names another site gets 403. It binds
// 127.0.0.1 unless told otherwise.
//
// Thread safety: Stop() may be called from any thread (also from a signal
// watcher); the other methods are const after Start().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "virga/status.h"

namespace virga {

struct DashboardOptions {
  std::string bind = "127.0.0.1";  // listen address; 0.0.0.0 exposes it (still token-guarded)
  uint16_t port = 0;               // 0: any free port (see Dashboard::port())
  std::string registry_dir;        // empty: DefaultRegistryDir() (train.h)
  std::string token;               // empty: 32 random hex chars
  size_t max_body_bytes = 64 << 10;    // larger request bodies get 413
  uint32_t max_history_points = 600;   // per job in /api/jobs?history=1 (evenly thinned)
  uint32_t max_jobs = 200;             // newest jobs listed by /api/jobs and /metrics
  uint32_t read_timeout_seconds = 5;   // a client that sends nothing this long is dropped
  // Slow clients cannot starve the others: a request head (request line and headers) not
  // complete this long after the connection was accepted is dropped, and waiting heads hold
  // no thread; a request served this long is cut off; one address may hold this many
  // connections (waiting or served), more are closed at once. One request per connection.
  double header_timeout_seconds = 10;
  double request_timeout_seconds = 30;
  uint32_t max_connections_per_peer = 256;
};

class Dashboard {
 public:
  // Binds and starts serving on background threads. InvalidArgument for a
  // bad option; Unavailable (naming the address) when the port cannot be bound.
  static Result<std::unique_ptr<Dashboard>> Start(DashboardOptions options);
  ~Dashboard();  // Stop()s

  // Stops serving and joins the server threads. Idempotent.
  void Stop();
  // Blocks until Stop() is called (from another thread).
  void Wait();

  uint16_t port() const;
  const std::string& token() const;
  const std::string& registry_dir() const;
  // http://<bind>:<port>/?token=<token> (127.0.0.1 for a wildcard bind).
  std::string url() const;

 private:
  struct Impl;
  explicit Dashboard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace virga
