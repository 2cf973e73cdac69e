#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace virga::cli {
namespace {

std::chrono::milliseconds Interval(bool tty) {
  if (tty) return std::chrono::milliseconds(200);
  const char* env = std::getenv("VIRGA_PROGRESS_SECONDS");
  const double s = env != nullptr && *env != '\0' ? std::atof(env) : 5.0;
  return std::chrono::milliseconds(static_cast<int64_t>(std::clamp(s, 0.0, 86400.0) * 1000));
}

}  // namespace

std::string RowCount(uint64_t rows) {
  char count[32];
  if (rows >= 1'000'000) std::snprintf(count, sizeof count, "%.2fM", rows / 1e6);
  else if (rows >= 10'000) std::snprintf(count, sizeof count, "%.0fk", rows / 1e3);
  else std::snprintf(count, sizeof count, "%llu", static_cast<unsigned long long>(rows));
  return count;
}

ProgressLine::ProgressLine(std::string command, ProgressTotals totals)
    : ProgressLine(std::move(command), totals, stderr, ::isatty(2) != 0, Interval(::isatty(2) != 0)) {}

ProgressLine::ProgressLine(std::string command, ProgressTotals totals, FILE* out, bool tty,
                           std::chrono::milliseconds every)
    : command_(std::move(command)), total_(totals), out_(out), tty_(tty), every_(every) {}

void ProgressLine::Update(uint64_t rows, uint64_t bytes) {
  rows_ = rows;
  bytes_ = bytes;
  const auto now = std::chrono::steady_clock::now();
  const auto quiet = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), every_);
  if (now - start_ < quiet || now - last_ < every_) return;
  last_ = now;
  Print(rows, bytes, false);
}

void ProgressLine::Finish() {
  if (printed_ && tty_) Print(rows_, bytes_, true);
}

void ProgressLine::Print(uint64_t rows, uint64_t bytes, bool last) {
  printed_ = true;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double mb = bytes / 1e6, rate = secs > 0 ? mb / secs : 0;
  char line[160];
  if (total_.rows > 0 && rows <= total_.rows) {
    const double row_rate = secs > 0 ? rows / secs : 0;
    const double left = row_rate > 0 ? (total_.rows - rows) / row_rate : 0;
    std::snprintf(line, sizeof line, "%s/%s rows (%.0f%%)  %.0f MB  %.0f MB/s  ETA %.0f s",
                  RowCount(rows).c_str(), RowCount(total_.rows).c_str(),
                  100.0 * rows / total_.rows, mb, rate, left);
  } else if (total_.bytes > 0 && bytes <= total_.bytes) {
    const double left = rate > 0 ? (total_.bytes - bytes) / 1e6 / rate : 0;
    std::snprintf(line, sizeof line, "%s rows  %.0f/%.0f MB (%.0f%%)  %.0f MB/s  ETA %.0f s",
                  RowCount(rows).c_str(), mb, total_.bytes / 1e6, 100.0 * bytes / total_.bytes,
                  rate, left);
  } else {
    std::snprintf(line, sizeof line, "%s rows  %.0f MB  %.0f MB/s", RowCount(rows).c_str(), mb,
                  rate);
  }
  std::fprintf(out_, "%svirga %s: %s%s", tty_ ? "\r" : "", command_.c_str(), line,
               tty_ && !last ? "   " : "\n");
  std::fflush(out_);
}

}  // namespace virga::cli
