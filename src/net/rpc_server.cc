// RpcServer: the I/O threads, their spin loop, and the accept loop. The
// per-connection state machine is in rpc_connection.cc.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "net/rpc.h"
#include "net/rpc_connection.h"
#include "net/tls.h"

namespace virga::net {

using asio::ip::tcp;
using internal::Connection;
using internal::Worker;

struct RpcServer::Impl {
  internal::ServerShared shared;
  // Declared before the acceptor: io_contexts must outlive their I/O objects.
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;           // on workers[0]
  std::optional<asio::steady_timer> accept_retry;  // after a failed accept (e.g. EMFILE)
  size_t next_worker = 0;                          // accepting thread only
  std::atomic<uint64_t> next_connection_id{1};
  std::atomic<bool> stopping{false};
  bool started = false;
  uint16_t port = 0;

  void Accept();
  void Adopt(Worker& w, tcp::socket socket);
  void Run(Worker& w);
};

void RpcServer::Impl::Accept() {
  Worker& w = *workers[next_worker++ % workers.size()];
  acceptor->async_accept(w.ioc, [this, &w](const asio::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping.load()) return;
    if (ec) {
      spdlog::warn("net: accept failed on port {}: {}; retrying in 100 ms", port, ec.message());
      accept_retry->expires_after(std::chrono::milliseconds(100));
      accept_retry->async_wait([this](const asio::error_code& e) {
        if (!e && !stopping.load()) Accept();
      });
      return;
    }
    Adopt(w, std::move(socket));
    Accept();
  });
}

// Runs on the accepting thread; hands the socket to w's thread.
void RpcServer::Impl::Adopt(Worker& w, tcp::socket socket) {
  asio::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const tcp::endpoint ep = socket.remote_endpoint(ec);
  const std::string address = ec ? std::string("?") : ep.address().to_string();
  std::string peer = ec ? address : fmt::format("{}:{}", address, ep.port());
  std::shared_ptr<void> slot = shared.peers.Take(address, shared.options.max_connections_per_peer);
  if (!slot) {
    spdlog::warn("net: refusing a connection from {}: it holds {} already", peer,
                 shared.options.max_connections_per_peer);
    w.counters.Add(w.counters.rejected);
    socket.close(ec);
    return;
  }
  const uint64_t id = next_connection_id.fetch_add(1);
  w.counters.Add(w.counters.accepted);
  w.counters.Add(w.counters.open);
  asio::post(w.ioc, [this, &w, id, peer = std::move(peer), s = std::move(socket),
                     slot = std::move(slot)]() mutable {
    // Stop posts its close-all after setting `stopping`, so a connection
    // adopted before that is closed by it, and none is adopted after.
    if (stopping.load()) {
      w.counters.open.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    spdlog::info("net: connection {} from {}", id, peer);
    auto c = std::make_shared<Connection>(shared, &w, std::move(s), id, std::move(peer));
    c->set_peer_slot(std::move(slot));
    w.conns.emplace(id, c);
    c->Start();
  });
}

// The I/O loop: block for one event, then busy-poll for up to `spin` after
// the last event before blocking again (see ServerOptions::spin). Each idle
// round of the spin yields the CPU; a yield that returns late means another
// thread was runnable on this CPU (a client pinned beside the server, or any
// other work): the spin would only take turns with it, so the thread blocks
// instead, and the peer's next message wakes it.
void RpcServer::Impl::Run(Worker& w) {
  using Clock = std::chrono::steady_clock;
  const auto spin = shared.options.spin;
  const auto yield_limit = shared.options.spin_yield_limit;
  while (w.ioc.run_one() > 0) {
    if (spin.count() == 0) continue;
    auto deadline = Clock::now() + spin;
    while (!w.ioc.stopped()) {
      if (w.ioc.poll() > 0) {
        deadline = Clock::now() + spin;
        continue;
      }
      w.spinning = true;  // ready work is drained: what comes next was caught by spinning
      const auto before = Clock::now();
      if (before >= deadline) break;
      std::this_thread::yield();
      if (yield_limit.count() > 0 && Clock::now() - before > yield_limit) break;  // shared CPU
    }
    w.spinning = false;
  }
}

RpcServer::RpcServer(ServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->shared.options = std::move(options);
  impl_->shared.handler = std::move(handler);
}

RpcServer::~RpcServer() { Stop(); }

Status RpcServer::Start() {
  Impl& m = *impl_;
  const ServerOptions& o = m.shared.options;
  if (m.started) return Status::InvalidArgument("RpcServer::Start called twice");
  if (o.token.empty()) return Status::InvalidArgument("ServerOptions.token is empty");
  if (o.threads < 1)
    return Status::InvalidArgument(fmt::format("ServerOptions.threads = {}", o.threads));
  if (!m.shared.handler) return Status::InvalidArgument("RpcServer has no handler");
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    VIRGA_ASSIGN_OR_RETURN(m.shared.tls, internal::ServerTlsContext(o.tls_cert_file, o.tls_key_file));
  }
  asio::error_code ec;
  const asio::ip::address addr = asio::ip::make_address(o.bind, ec);
  if (ec)
    return Status::InvalidArgument(fmt::format("bind address '{}': {}", o.bind, ec.message()));

  for (int i = 0; i < o.threads; ++i) m.workers.push_back(std::make_unique<Worker>());
  m.acceptor.emplace(m.workers[0]->ioc);
  m.accept_retry.emplace(m.workers[0]->ioc);
  const tcp::endpoint ep(addr, o.port);
  m.acceptor->open(ep.protocol(), ec);
  if (!ec) m.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) m.acceptor->bind(ep, ec);
  if (!ec) m.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) m.port = m.acceptor->local_endpoint(ec).port();
  if (ec) {
    m.acceptor.reset();
    m.accept_retry.reset();
    m.workers.clear();
    return Status::Unavailable(fmt::format("listen on {}:{}: {}", o.bind, o.port, ec.message()));
  }
  m.started = true;
  m.Accept();
  for (auto& w : m.workers) {
    w->guard.emplace(w->ioc.get_executor());
    w->thread = std::thread([&m, wp = w.get()] { m.Run(*wp); });
  }
  spdlog::info("net: serving on {}:{} with {} I/O thread(s), spin {} us{}", o.bind, m.port,
               o.threads, o.spin.count(), m.shared.tls ? ", TLS" : "");
  return Status::OK();
}

void RpcServer::Stop() {
  Impl& m = *impl_;
  if (!m.started || m.stopping.exchange(true)) return;
  asio::post(m.workers[0]->ioc, [&m] {
    asio::error_code ignored;
    m.acceptor->close(ignored);
    m.accept_retry->cancel();
  });
  for (auto& w : m.workers) {
    asio::post(w->ioc, [wp = w.get()] {
      auto conns = std::move(wp->conns);  // Close() erases from wp->conns
      wp->conns.clear();
      for (auto& [id, c] : conns) c->Close("server stopping", false);
    });
    w->guard.reset();  // each thread returns once its connections are closed
  }
  for (auto& w : m.workers) w->thread.join();
  spdlog::info("net: server on port {} stopped", m.port);
}

uint16_t RpcServer::port() const { return impl_->port; }

ServerCounters RpcServer::counters() const {
  ServerCounters c;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (const auto& w : impl_->workers) {
    const internal::ThreadCounters& t = w->counters;
    c.connections_accepted += get(t.accepted);
    c.connections_open += get(t.open);
    c.connections_rejected += get(t.rejected);
    c.frames += get(t.frames);
    c.bytes_in += get(t.bytes_in);
    c.bytes_out += get(t.bytes_out);
    c.spin_hits += get(t.spin_hits);
  }
  return c;
}

}  // namespace virga::net
