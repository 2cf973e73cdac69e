// `virga deploy lambda --zip OUT.zip`: the AWS Lambda deployment package
// (src/lambda/lambda_package.h, docs/lambda.md).
#include <fmt/format.h>

#include <cstdio>

#include <fstream>
#include <sstream>
#include <unistd.h>

#include "aws/lambda_api.h"
#include "lambda/lambda_package.h"
#include "tools/commands.h"

namespace virga::cli {
namespace {

std::string MiB(uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

int BuildPackageCommand(const lambda::PackageOptions& options, bool list) {
  Result<lambda::PackageReport> report = lambda::BuildLambdaPackage(options);
  if (!report.ok()) {
    std::fprintf(stderr, "virga deploy lambda: %s\n", report.status().ToString().c_str());
    return 1;
  }
  if (list) {
    for (const lambda::PackagedFile& f : report->files) {
      std::printf("%04o %10llu %s%s%s\n", f.mode, static_cast<unsigned long long>(f.bytes),
                  f.name.c_str(), f.source.empty() ? "" : "  <- ", f.source.c_str());
    }
  }
  std::printf("%s: %zu files, %s zipped (limit %s), %s unzipped (limit %s)\n",
              options.zip_path.c_str(), report->files.size(), MiB(report->zipped_bytes).c_str(),
              MiB(options.max_zipped_bytes).c_str(), MiB(report->unzipped_bytes).c_str(),
              MiB(options.max_unzipped_bytes).c_str());
  return 0;
}

struct FunctionArgs {
  bool create = false, update = false;
  aws::LambdaFunctionConfig config;
  std::vector<std::string> env;  // KEY=VALUE
};

// --create / --update: uploads the package (built first when the zip does not exist).
int DeployFunction(lambda::PackageOptions options, const FunctionArgs& f, bool list) {
  const char* me = "virga deploy lambda";
  if (f.config.name.empty()) return std::fprintf(stderr, "%s: --function is required\n", me), 2;
  if (f.create && f.config.role.empty()) {
    return std::fprintf(stderr, "%s: --create needs --role (the execution role's ARN)\n", me), 2;
  }
  std::string tmp;
  if (options.zip_path.empty()) {
    tmp = "/tmp/virga-lambda-" + std::to_string(::getpid()) + ".zip";
    options.zip_path = tmp;
  }
  if (::access(options.zip_path.c_str(), R_OK) != 0) {
    if (int rc = BuildPackageCommand(options, list); rc != 0) return rc;
  }
  if (Status s = lambda::CheckPackage(options.zip_path); !s.ok()) {
    return std::fprintf(stderr, "%s: %s\n", me, s.message().c_str()), 1;
  }
  std::ifstream in(options.zip_path, std::ios::binary);
  std::stringstream zip;
  zip << in.rdbuf();
  if (!tmp.empty()) ::unlink(tmp.c_str());
  aws::LambdaFunctionConfig config = f.config;
  for (const std::string& kv : f.env) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return std::fprintf(stderr, "%s: --env '%s': expected KEY=VALUE\n", me, kv.c_str()), 2;
    }
    config.environment[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto settings = aws::ResolveSettings("lambda");
  if (!settings.ok()) return std::fprintf(stderr, "%s: %s\n", me, settings.status().message().c_str()), 1;
  aws::LambdaApi api(*settings);
  Result<std::string> arn = f.create ? api.CreateFunction(config, zip.str())
                                     : api.UpdateFunctionCode(config.name, zip.str());
  if (!arn.ok()) return std::fprintf(stderr, "%s: %s\n", me, arn.status().message().c_str()), 1;
  std::printf("%s function %s (%s) at %s: %s zipped\n", f.create ? "created" : "updated",
              config.name.c_str(), arn->c_str(), api.endpoint().c_str(),
              MiB(zip.str().size()).c_str());
  return 0;
}

}  // namespace

void RegisterDeploy(CLI::App& app, int* exit_code) {
  auto* deploy = app.add_subcommand("deploy", "Deploy virga's worker functions to a cloud");
  deploy->require_subcommand(1);
  auto options = std::make_shared<lambda::PackageOptions>();
  auto no_strip = std::make_shared<bool>(false);
  auto list = std::make_shared<bool>(false);
  auto* cmd = deploy->add_subcommand(
      "lambda", "AWS Lambda: build the deployment package (runtime provided.al2023, x86_64)");
  auto fn = std::make_shared<FunctionArgs>();
  cmd->add_option("--zip", options->zip_path,
                  "The zip to write; with --create/--update, the package to upload (built first "
                  "if it does not exist)");
  cmd->add_flag("--create", fn->create, "Create the function from the package (CreateFunction)");
  cmd->add_flag("--update", fn->update, "Replace the function's code (UpdateFunctionCode)");
  cmd->add_option("--function", fn->config.name, "The function's name (--create/--update)");
  cmd->add_option("--role", fn->config.role, "--create: the execution role's ARN");
  cmd->add_option("--memory", fn->config.memory_mb, "--create: memory, MB (1769 = one vCPU)")
      ->capture_default_str()
      ->check(CLI::Range(128, 10240));
  cmd->add_option("--timeout", fn->config.timeout_s, "--create: timeout, seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 900));
  cmd->add_option("--env", fn->env, "--create: KEY=VALUE in the function's environment (repeat)");
  cmd->add_option("--binary", options->binary, "The virga executable to ship (default: this one)");
  cmd->add_option("--ca-bundle", options->ca_bundle, "CA bundle shipped for https (\"\" = none)")
      ->capture_default_str();
  cmd->add_flag("--no-strip", *no_strip, "Keep the binary's debug sections");
  cmd->add_flag("--list", *list, "List the files of the package");
  cmd->callback([options, no_strip, list, fn, exit_code] {
    options->strip_debug = !*no_strip;
    if (fn->create && fn->update) {
      std::fprintf(stderr, "virga deploy lambda: --create and --update exclude each other\n");
      *exit_code = 2;
    } else if (fn->create || fn->update) {
      *exit_code = DeployFunction(*options, *fn, *list);
    } else if (options->zip_path.empty()) {
      std::fprintf(stderr, "virga deploy lambda: give --zip OUT.zip, --create or --update\n");
      *exit_code = 2;
    } else {
      *exit_code = BuildPackageCommand(*options, *list);
    }
  });
}

}  // namespace virga::cli
