// `virga deploy lambda --zip OUT.zip`: the AWS Lambda deployment package
// (src/lambda/lambda_package.h, docs/lambda.md).
#include <fmt/format.h>

#include <cstdio>

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

}  // namespace

void RegisterDeploy(CLI::App& app, int* exit_code) {
  auto* deploy = app.add_subcommand("deploy", "Deploy virga's worker functions to a cloud");
  deploy->require_subcommand(1);
  auto options = std::make_shared<lambda::PackageOptions>();
  auto no_strip = std::make_shared<bool>(false);
  auto list = std::make_shared<bool>(false);
  auto* cmd = deploy->add_subcommand(
      "lambda", "AWS Lambda: build the deployment package (runtime provided.al2023, x86_64)");
  cmd->add_option("--zip", options->zip_path, "The zip to write")->required();
  cmd->add_option("--binary", options->binary, "The virga executable to ship (default: this one)");
  cmd->add_option("--ca-bundle", options->ca_bundle, "CA bundle shipped for https (\"\" = none)")
      ->capture_default_str();
  cmd->add_flag("--no-strip", *no_strip, "Keep the binary's debug sections");
  cmd->add_flag("--list", *list, "List the files of the package");
  cmd->callback([options, no_strip, list, exit_code] {
    options->strip_debug = !*no_strip;
    *exit_code = BuildPackageCommand(*options, *list);
  });
}

}  // namespace virga::cli
