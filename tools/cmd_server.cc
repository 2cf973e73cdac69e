// `virga server` (run a parameter server) and `virga ping` (check servers).
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "ps/server.h"
#include "tools/commands.h"
#include "tools/token.h"
#include "virga/ps_client.h"

namespace virga::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct ServerArgs {
  ps::PsServerOptions o;
  std::string token_file;
  double checkpoint_every = 0;
  int64_t spin_us = 50;
  int64_t auth_timeout_ms = 5000;
  std::string advertise;  // HOST[:PORT] clients are told to use
};

int RunServer(ServerArgs& a) {
  auto token = LoadToken(a.token_file, /*create=*/true);
  if (!token.ok()) return std::fprintf(stderr, "virga server: %s\n", token.status().message().c_str()), 1;
  a.o.net.token = *token;
  // Checkpoints asked for without a store go to the default one, like every job's output.
  if (a.o.checkpoint_uri.empty() && (a.checkpoint_every > 0 || a.o.restore)) {
    a.o.checkpoint_uri = DefaultStoreUri();
  }
  a.o.checkpoint_every = std::chrono::milliseconds(std::llround(a.checkpoint_every * 1000));
  a.o.net.spin = std::chrono::microseconds(a.spin_us);
  a.o.net.auth_timeout = std::chrono::milliseconds(a.auth_timeout_ms);
  ps::PsServer server(a.o);
  if (Status s = server.Start(); !s.ok())
    return std::fprintf(stderr, "virga server: %s\n", s.ToString().c_str()), 1;
  std::printf("virga server listening on %s:%u (%d threads%s)\n", a.o.net.bind.c_str(),
              server.port(), a.o.net.threads,
              a.o.checkpoint_uri.empty() ? "" : (", checkpoints to " + a.o.checkpoint_uri).c_str());
  if (!a.advertise.empty()) {
    std::string addr = a.advertise;
    if (addr.find(':') == std::string::npos) addr += ":" + std::to_string(server.port());
    std::printf("virga server advertised as %s (pass --servers %s to train and search)\n",
                addr.c_str(), addr.c_str());
  } else if (a.o.net.bind == "0.0.0.0" || a.o.net.bind == "::") {
    std::printf("virga server: bound to every interface; functions elsewhere need this host's "
                "reachable address (--advertise HOST:PORT prints it)\n");
  }
  std::fflush(stdout);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) pause();
  server.Stop();
  return 0;
}

int Ping(const std::string& servers, const std::string& token_file, const std::string& tls_ca) {
  auto list = ParseServerList(servers);
  if (!list.ok()) return std::fprintf(stderr, "virga ping: %s\n", list.status().message().c_str()), 2;
  auto token = LoadToken(token_file, false);
  if (!token.ok()) return std::fprintf(stderr, "virga ping: %s\n", token.status().message().c_str()), 1;
  std::string ca_pem;
  if (!tls_ca.empty()) {
    std::ifstream f(tls_ca, std::ios::binary);
    ca_pem.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (ca_pem.empty()) return std::fprintf(stderr, "virga ping: cannot read --tls-ca %s\n", tls_ca.c_str()), 2;
  }
  int rc = 0;
  for (const std::string& addr : *list) {
    PsClientOptions o;
    o.servers = {addr};
    o.token = *token;
    o.tls_ca_pem = ca_pem;
    o.connect_attempts = 2;
    auto client = PsClient::Connect(o);
    if (!client.ok()) {
      std::printf("%s: %s\n", addr.c_str(), client.status().ToString().c_str());
      rc = 1;
      continue;
    }
    auto stats = (*client)->ServerStats(0);
    if (!stats.ok()) {
      std::printf("%s: %s\n", addr.c_str(), stats.status().ToString().c_str());
      rc = 1;
      continue;
    }
    auto j = nlohmann::json::parse(*stats);
    std::printf("%s: ok, %llu requests, %zu tables, %llu kv keys\n", addr.c_str(),
                static_cast<unsigned long long>(j["requests_total"].get<uint64_t>()),
                j["tables"].size(), static_cast<unsigned long long>(j["kv_keys"].get<uint64_t>()));
    if (const auto& c = j.value("checkpoints", nlohmann::json::object()); c.value("written", 0) + c.value("failed", 0) > 0) {
      std::printf("  checkpoints %llu written (last %s, paused %llu us), %llu failed%s%s\n",
                  static_cast<unsigned long long>(c.value("written", uint64_t{0})),
                  c.value("last", std::string("-")).c_str(),
                  static_cast<unsigned long long>(c.value("pause_us", uint64_t{0})),
                  static_cast<unsigned long long>(c.value("failed", uint64_t{0})),
                  c.value("last_error", std::string()).empty() ? "" : ": LAST FAILED: ",
                  c.value("last_error", std::string()).c_str());
      if (!c.value("last_error", std::string()).empty()) rc = 1;
    }
    for (const auto& t : j["tables"]) {
      std::printf("  table %-24s %-6s width %-3u %-9s rows %-10llu version %-10llu pulls %llu pushes %llu\n",
                  t["name"].get<std::string>().c_str(), t["kind"].get<std::string>().c_str(),
                  t["width"].get<unsigned>(), t["optimizer"].get<std::string>().c_str(),
                  static_cast<unsigned long long>(t["rows"].get<uint64_t>()),
                  static_cast<unsigned long long>(t["version"].get<uint64_t>()),
                  static_cast<unsigned long long>(t["pulls"].get<uint64_t>()),
                  static_cast<unsigned long long>(t["pushes"].get<uint64_t>()));
    }
  }
  return rc;
}

}  // namespace

void RegisterServer(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ServerArgs>();
  a->o.net.port = 7311;
  auto* cmd = app.add_subcommand("server", "Run a parameter server and key-value store");
  cmd->add_option("--port", a->o.net.port, "TCP port (0: any free port)")->capture_default_str();
  cmd->add_option("--bind", a->o.net.bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--advertise", a->advertise,
                  "HOST[:PORT] functions reach this server at (printed for train --servers)");
  cmd->add_option("--token-file", a->token_file,
                  "Shared secret file (default: $VIRGA_TOKEN, else ~/.virga/token, created)");
  cmd->add_option("--threads", a->o.net.threads, "I/O threads")->capture_default_str();
  cmd->add_option("--tls-cert", a->o.net.tls_cert_file,
                  "Serve TLS with this certificate (chain), PEM (with --tls-key; default: plain TCP)");
  cmd->add_option("--tls-key", a->o.net.tls_key_file, "The TLS certificate's private key, PEM");
  cmd->add_option("--checkpoint", a->o.checkpoint_uri,
                  "Object store URI for checkpoints (any store: file://, s3://, ...), under "
                  "checkpoints/<name>/; default with --checkpoint-every or --restore: $VIRGA_STORE, "
                  "else file://./virga-store");
  cmd->add_option("--checkpoint-every", a->checkpoint_every, "Seconds between checkpoints (0: on request)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--name", a->o.name, "Checkpoint name (default ps-<port>)");
  cmd->add_flag("--restore", a->o.restore, "Resume from the latest checkpoint");
  cmd->add_flag("--restore-required", a->o.restore_required,
                "With --restore: exit with an error when there is no checkpoint (never start empty)");
  cmd->add_option("--max-connections-per-peer", a->o.net.max_connections_per_peer,
                  "Connections one address may hold open (more are closed at accept; 0: no cap)")
      ->capture_default_str();
  cmd->add_option("--spin-us", a->spin_us,
                  "Busy-poll this long for the next request before sleeping (0: off)")
      ->capture_default_str();
  cmd->add_option("--auth-timeout-ms", a->auth_timeout_ms,
                  "Close connections that have not authenticated within this (ms)")
      ->check(CLI::Range(int64_t{1}, int64_t{600000}))
      ->capture_default_str();
  cmd->add_option("--max-frame-bytes", a->o.net.max_payload, "Largest accepted frame payload, bytes")
      ->capture_default_str();
  cmd->callback([a, exit_code] { *exit_code = RunServer(*a); });

  auto servers = std::make_shared<std::string>("127.0.0.1:7311");
  auto token_file = std::make_shared<std::string>();
  auto tls_ca = std::make_shared<std::string>();
  auto* ping = app.add_subcommand("ping", "Check servers: tables and request counters");
  ping->add_option("--servers", *servers, "host:port[,host:port...]")->capture_default_str();
  ping->add_option("--token-file", *token_file, "Shared secret file");
  ping->add_option("--tls-ca", *tls_ca, "CA certificate(s), PEM: connect over TLS and verify");
  ping->callback([servers, token_file, tls_ca, exit_code] {
    *exit_code = Ping(*servers, *token_file, *tls_ca);
  });
}

}  // namespace virga::cli
