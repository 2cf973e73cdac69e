// Subcommands of the `virga` CLI. Each Register* adds its subcommand to the
// app; the callback runs the command and sets *exit_code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace virga::cli {

// The default store URI: $VIRGA_STORE, else file://./virga-store.
std::string DefaultStoreUri();
// "--model" help: every registered model with its summary.
std::string ModelHelp();

void RegisterIngest(CLI::App& app, int* exit_code);
void RegisterDatagen(CLI::App& app, int* exit_code);
void RegisterNormalize(CLI::App& app, int* exit_code);
void RegisterDatasetTools(CLI::App& app, int* exit_code);  // inspect, scan, dump
void RegisterBench(CLI::App& app, int* exit_code);
void RegisterBenchPs(CLI::App& bench, int* exit_code);  // bench ps (+ hidden ps-client, ps-train-probe)
void RegisterServer(CLI::App& app, int* exit_code);  // server, ping
void RegisterWorker(CLI::App& app, int* exit_code);  // worker (one training function)
// Runs one worker payload (its JSON text) exactly as `virga worker --payload
// FILE` does and returns its exit code (cmd_worker.cc); `source` names the
// payload in messages. Used by `virga worker` and, in each invocation's
// child, by `virga lambda-runtime`.
int RunWorkerPayload(std::string_view text, std::string_view source);
void RegisterLambdaRuntime(CLI::App& app, int* exit_code);  // lambda-runtime (AWS Lambda)
void RegisterDeploy(CLI::App& app, int* exit_code);         // deploy lambda --zip
void RegisterBenchLambda(CLI::App& bench, int* exit_code);  // bench lambda-runtime
void RegisterModelTools(CLI::App& app, int* exit_code);  // export, predict
void RegisterTrain(CLI::App& app, int* exit_code);  // train
void RegisterBenchTrain(CLI::App& bench, int* exit_code);  // bench train
void RegisterJobs(CLI::App& app, int* exit_code);  // jobs, kill, search
void RegisterJobsPrune(CLI::App& jobs, int* exit_code);  // jobs prune
void RegisterDashboard(CLI::App& app, int* exit_code);  // dashboard

}  // namespace virga::cli
