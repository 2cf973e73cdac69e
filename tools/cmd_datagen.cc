#include <cstdio>

#include "tools/commands.h"
#include "tools/progress.h"
#include "virga/datagen.h"

namespace virga::cli {

void RegisterDatagen(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("datagen", "Generate synthetic data with a known optimum");
  cmd->require_subcommand(1);
  auto* criteo = cmd->add_subcommand(
      "criteo", "Criteo-format click data from a planted logistic model");
  auto o = std::make_shared<CriteoGenOptions>();
  criteo->add_option("--rows", o->rows, "Rows to write")->capture_default_str();
  criteo->add_option("--seed", o->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  criteo->add_option("--interactions", o->interactions,
                     "Planted pairwise interactions (for --model fm): each of 4 field pairs adds "
                     "a logit term of this standard deviation; 0 = none")
      ->capture_default_str();
  criteo->add_option("--out", o->out_path, "Output file (.gz/.zst compress; - for stdout)")
      ->required();
  criteo->callback([o, exit_code] {
    ProgressLine line("datagen", ProgressTotals{0, o->rows});
    o->on_progress = [&line](uint64_t rows, uint64_t bytes) { line.Update(rows, bytes); };
    auto report = GenerateCriteo(*o);
    o->on_progress = nullptr;
    line.Finish();
    if (!report.ok()) {
      std::fprintf(stderr, "virga datagen: %s\n", report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::fprintf(o->out_path == "-" ? stderr : stdout,
                 "wrote %llu rows (%.1f%% positive, %.1f MB) to %s in %.2f s; "
                 "Bayes-optimal logloss %.5f (expected %.5f)\n",
                 static_cast<unsigned long long>(report->rows),
                 report->rows ? 100.0 * report->positives / report->rows : 0.0,
                 report->bytes / 1e6, o->out_path.c_str(), report->seconds,
                 report->bayes_logloss, report->expected_bayes_logloss);
  });

  auto* ratings = cmd->add_subcommand(
      "ratings", "user/item ratings from a planted biased low-rank model (for --model mf)");
  auto r = std::make_shared<RatingsGenOptions>();
  ratings->add_option("--rows", r->rows, "Ratings to write")->capture_default_str();
  ratings->add_option("--users", r->users, "Users (ids 0..users-1)")->capture_default_str();
  ratings->add_option("--items", r->items, "Items (ids 0..items-1)")->capture_default_str();
  ratings->add_option("--rank", r->rank, "Rank of the planted factors")->capture_default_str();
  ratings->add_option("--noise", r->noise, "Noise standard deviation: the RMSE floor")
      ->capture_default_str();
  ratings->add_option("--seed", r->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  ratings->add_option("--out", r->out_path, "Output file (.gz/.zst compress; - for stdout)")
      ->required();
  ratings->callback([r, exit_code] {
    ProgressLine line("datagen", ProgressTotals{0, r->rows});
    r->on_progress = [&line](uint64_t rows, uint64_t bytes) { line.Update(rows, bytes); };
    auto report = GenerateRatings(*r);
    r->on_progress = nullptr;
    line.Finish();
    if (!report.ok()) {
      std::fprintf(stderr, "virga datagen: %s\n", report.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    std::fprintf(r->out_path == "-" ? stderr : stdout,
                 "wrote %llu ratings (%u users, %u items, rank %u; %.1f MB) to %s in %.2f s; "
                 "Bayes floor RMSE %.5f (expected %.5f; predicting the mean: %.5f)\n",
                 static_cast<unsigned long long>(report->rows), r->users, r->items, r->rank,
                 report->bytes / 1e6, r->out_path.c_str(), report->seconds, report->bayes_rmse,
                 report->expected_rmse, report->label_stddev);
  });
}

}  // namespace virga::cli
