// `virga dashboard`: serves the live dashboard (include/virga/dashboard.h)
// over the job registry until SIGINT/SIGTERM; prints its URL, token included.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/atomic_file.h"
#include "tools/commands.h"
#include "virga/dashboard.h"

namespace virga::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct DashboardArgs {
  DashboardOptions o;
  std::string token_file;
};

// The token in `path` (first line); NotFound if the file does not exist.
Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound(path);
  std::string t;
  std::getline(in, t);
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() < 16) return Status::InvalidArgument("token file " + path + ": need >= 16 characters");
  return t;
}

// Writes `token` to a new file `path`, readable by its owner only.
Status WriteToken(const std::string& path, const std::string& token) {
  return WriteFileAtomically(path, token + "\n", {.mode = 0600, .replace = false})
      .WithContext("token file");
}

int RunDashboard(DashboardArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "virga dashboard: %s\n", s.ToString().c_str());
    return 1;
  };
  bool write_token = false;
  if (!a.token_file.empty()) {
    auto t = ReadToken(a.token_file);
    if (t.ok()) {
      a.o.token = *t;
    } else if (t.status().IsNotFound()) {
      write_token = true;  // a fresh random token, saved there once serving
    } else {
      return fail(t.status());
    }
  }
  auto d = Dashboard::Start(a.o);
  if (!d.ok()) return fail(d.status());
  if (write_token) {
    if (Status s = WriteToken(a.token_file, (*d)->token()); !s.ok()) return fail(s);
  }
  std::printf("virga dashboard: %s\n  registry %s (Ctrl-C stops it)\n", (*d)->url().c_str(),
              (*d)->registry_dir().c_str());
  std::fflush(stdout);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) pause();
  (*d)->Stop();
  return 0;
}

}  // namespace

void RegisterDashboard(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<DashboardArgs>();
  a->o.port = 8765;
  auto* cmd = app.add_subcommand(
      "dashboard", "Live web dashboard of the registered jobs: table, loss curves, kill buttons");
  cmd->add_option("--port", a->o.port, "Port (0: any free port)")->capture_default_str();
  cmd->add_option("--bind", a->o.bind, "Listen address (the token still guards every request)")
      ->capture_default_str();
  cmd->add_option("--registry", a->o.registry_dir,
                  "Registry dir (default $VIRGA_HOME/jobs, ~/.virga/jobs)");
  cmd->add_option("--token-file", a->token_file,
                  "Token to require (first line); created with a random one if missing. "
                  "Default: a fresh random token");
  cmd->callback([a, exit_code] { *exit_code = RunDashboard(*a); });
}

}  // namespace virga::cli
