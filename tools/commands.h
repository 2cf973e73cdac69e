// Subcommands of the `virga` CLI. Each Register* adds its subcommand to the
// app; the callback runs the command and sets *exit_code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace virga::cli {

// The default store URI: $VIRGA_STORE, else file://./virga-store.
std::string DefaultStoreUri();

void RegisterIngest(CLI::App& app, int* exit_code);
void RegisterDatagen(CLI::App& app, int* exit_code);
void RegisterNormalize(CLI::App& app, int* exit_code);
void RegisterDatasetTools(CLI::App& app, int* exit_code);  // inspect, scan, dump
void RegisterBench(CLI::App& app, int* exit_code);
void RegisterBenchPs(CLI::App& bench, int* exit_code);  // bench ps (+ hidden ps-client, ps-train-probe)
void RegisterServer(CLI::App& app, int* exit_code);  // server, ping
void RegisterWorker(CLI::App& app, int* exit_code);  // worker (one training function)
void RegisterModelTools(CLI::App& app, int* exit_code);  // export, predict
void RegisterTrain(CLI::App& app, int* exit_code);  // train
void RegisterBenchTrain(CLI::App& bench, int* exit_code);  // bench train
void RegisterJobs(CLI::App& app, int* exit_code);  // jobs, kill, search
void RegisterDashboard(CLI::App& app, int* exit_code);  // dashboard

}  // namespace virga::cli
