#include "tools/train_line.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace virga::cli {

std::string ElapsedText(double s) {
  char buf[32];
  if (!(s >= 0)) s = 0;
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    const long t = std::lround(s);
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  } else {
    const long m = std::lround(s / 60);
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", m / 60, m % 60);
  }
  return buf;
}

std::string CountText(double n) {
  char buf[32];
  if (!(n >= 0)) n = 0;
  if (n < 1e4) std::snprintf(buf, sizeof buf, "%.0f", n);
  else if (n < 1e5) std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  else if (n < 1e6) std::snprintf(buf, sizeof buf, "%.0fk", n / 1e3);
  else if (n < 1e9) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2fG", n / 1e9);
  return buf;
}

std::string TrainLine(const TrainProgress& p, size_t width) {
  char buf[96];
  // Each part with its priority (higher is dropped first; 0 is never dropped).
  struct Part {
    std::string text;
    int drop;
  };
  std::vector<Part> parts;
  std::snprintf(buf, sizeof buf, "%6s", ElapsedText(p.seconds).c_str());
  parts.push_back({buf, 0});
  std::snprintf(buf, sizeof buf, "epoch %u/%u", p.epoch, p.epochs);
  parts.push_back({buf, 0});
  std::snprintf(buf, sizeof buf, "%.16s %.4f", p.metric.c_str(), p.test_metric);
  const std::string metric = buf;
  std::string metric_best = metric;
  if (std::isfinite(p.best_metric)) {
    std::snprintf(buf, sizeof buf, " (best %.4f)", p.best_metric);
    metric_best += buf;
  }
  parts.push_back({metric_best, 0});
  const size_t metric_part = parts.size() - 1;
  if (!std::isnan(p.test_auc)) {  // binary models only
    std::snprintf(buf, sizeof buf, "auc %.4f", p.test_auc);
    parts.push_back({buf, 2});
  }
  parts.push_back({CountText(p.samples_per_second) + " samples/s", 0});
  std::snprintf(buf, sizeof buf, "%u workers", p.workers_alive);
  parts.push_back({buf, 5});
  if (p.workers_failed > 0) {
    parts.push_back({CountText(static_cast<double>(p.workers_failed)) + " failed", 4});
  }
  auto join = [&] {
    std::string line;
    for (const Part& part : parts) {
      if (part.drop < 0) continue;
      line += line.empty() ? "" : "  ";
      line += part.text;
    }
    return line;
  };
  std::string line = join();
  for (int level = 5; line.size() > width && level >= 1; --level) {
    if (level == 3) parts[metric_part].text = metric;  // the best value goes before auc
    for (Part& part : parts)
      if (part.drop == level) part.drop = -1;
    line = join();
  }
  if (line.size() > width) line.resize(width);  // only with absurd inputs
  return line;
}

}  // namespace virga::cli
