// The `virga` command line: one binary for every role (ingest, tools, and
// later server and worker), so a worker function is just `virga worker`.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/suggest.h"

namespace virga::cli {

std::string DefaultStoreUri() {
  const char* env = std::getenv("VIRGA_STORE");
  return env && *env ? env : "file://./virga-store";
}

}  // namespace virga::cli

int main(int argc, char** argv) {
  CLI::App app{"virga: serverless machine learning"};
  app.require_subcommand(1);
  int exit_code = 0;
  virga::cli::RegisterIngest(app, &exit_code);
  virga::cli::RegisterDatagen(app, &exit_code);
  virga::cli::RegisterNormalize(app, &exit_code);
  virga::cli::RegisterDatasetTools(app, &exit_code);
  virga::cli::RegisterBench(app, &exit_code);
  virga::cli::RegisterServer(app, &exit_code);
  virga::cli::RegisterWorker(app, &exit_code);
  virga::cli::RegisterLambdaRuntime(app, &exit_code);
  virga::cli::RegisterDeploy(app, &exit_code);
  virga::cli::RegisterModelTools(app, &exit_code);
  virga::cli::RegisterTrain(app, &exit_code);
  virga::cli::RegisterJobs(app, &exit_code);
  virga::cli::RegisterDashboard(app, &exit_code);
  app.set_version_flag("--version", std::string("virga ") + VIRGA_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A flag CLI11 did not recognise is often the cause of the error it
    // reports (a misspelt required flag is "--format is required"): name it.
    std::vector<std::string> args(argv + 1, argv + argc);
    const std::string fixes = virga::cli::SuggestFixes(app, args);
    if (!fixes.empty() && e.get_exit_code() != 0) std::fputs(fixes.c_str(), stderr);
    return app.exit(e);
  }
  return exit_code;
}
