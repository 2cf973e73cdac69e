// The `virga` command line: one binary for every role (ingest, tools, and
// later server and worker), so a worker function is just `virga worker`.
#include <cstdlib>

#include "tools/commands.h"

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
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
