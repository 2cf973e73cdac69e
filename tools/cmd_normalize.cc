#include <cstdio>

#include "tools/commands.h"
#include "tools/stage_flags.h"
#include "virga/normalize.h"
#include "virga/object_store.h"
#include "virga/stage.h"

namespace virga::cli {

void RegisterNormalize(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("normalize", "Scale numeric features into a new dataset");
  struct Args {
    std::string store = DefaultStoreUri(), method = "minmax";
    NormalizeOptions o;
    StageFlags stage;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--store", args->store, "Object store URI")->capture_default_str();
  cmd->add_option("--dataset", args->o.dataset, "Input dataset")->required();
  cmd->add_option("--method", args->method, "minmax | standard")
      ->check(CLI::IsMember({"minmax", "standard"}))
      ->capture_default_str();
  cmd->add_option("--out", args->o.out, "Name of the normalized dataset")->required();
  args->stage.Add(cmd, /*ingest=*/false);
  cmd->callback([args, exit_code] {
    NormalizeOptions o = args->o;
    o.method = *ParseNormalizeMethod(args->method);
    Result<NormalizeReport> report = Status::Internal("not run");
    StageStats stats;
    if (args->stage.OnFunctions()) {
      auto stage = args->stage.Options("normalize");
      if (!stage.ok()) {
        std::fprintf(stderr, "virga normalize: %s\n", stage.status().message().c_str());
        *exit_code = 2;
        return;
      }
      report = NormalizeOnFunctions(args->store, o, *stage, &stats);
    } else {
      auto store = ObjectStore::Open(args->store);
      if (!store.ok()) {
        std::fprintf(stderr, "virga normalize: %s\n", store.status().ToString().c_str());
        *exit_code = 1;
        return;
      }
      report = Normalize(**store, o);
    }
    if (!report.ok()) {
      std::fprintf(stderr, "virga normalize: %s\n", report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::printf("normalized %s -> %s (%s): %llu rows in %llu partitions, %llu features scaled, "
                "%.2f s\n",
                o.dataset.c_str(), o.out.c_str(), args->method.c_str(),
                static_cast<unsigned long long>(report->rows),
                static_cast<unsigned long long>(report->partitions),
                static_cast<unsigned long long>(report->features_scaled), report->seconds);
    if (stats.functions > 0) StageFlags::PrintStats("normalize", stats);
  });
}

}  // namespace virga::cli
