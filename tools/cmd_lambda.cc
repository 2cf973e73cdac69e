// `virga lambda-runtime`: the AWS Lambda custom runtime (src/lambda,
// docs/lambda.md), started by the deployment package's bootstrap. Each
// invocation's payload runs in a forked child through RunWorkerPayload, the
// code path of `virga worker --payload FILE`.
#include <cstdio>

#include "lambda/lambda_runtime.h"
#include "tools/commands.h"

namespace virga::cli {
namespace {

int RunLambdaRuntimeCommand(lambda::LambdaRuntimeOptions options) {
  options.run_payload = [](std::string_view payload) {
    return RunWorkerPayload(payload, "event payload");
  };
  Status s = lambda::RunLambdaRuntime(options);
  if (!s.ok()) {
    std::fprintf(stderr, "virga lambda-runtime: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterLambdaRuntime(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<lambda::LambdaRuntimeOptions>();
  auto kill_margin_ms = std::make_shared<int64_t>(options->kill_margin.count());
  auto no_cap = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "lambda-runtime",
      "AWS Lambda custom runtime: run each invocation's worker payload (started by bootstrap)");
  cmd->add_option("--max-invocations", options->max_invocations,
                  "Exit 0 after this many invocations (0 = never)");
  cmd->add_option("--kill-margin-ms", *kill_margin_ms,
                  "Kill a child still running this long before the deadline")
      ->capture_default_str();
  cmd->add_flag("--no-memory-cap", *no_cap,
                "Do not make the memory size the child's address-space cap");
  cmd->callback([options, kill_margin_ms, no_cap, exit_code] {
    options->kill_margin = std::chrono::milliseconds(*kill_margin_ms);
    if (*no_cap) options->enforce_memory_cap = false;
    *exit_code = RunLambdaRuntimeCommand(*options);
  });
}

}  // namespace virga::cli
