#include "tools/progress.h"

#include <unistd.h>

#include <cstdio>

namespace virga::cli {

ProgressLine::ProgressLine(std::string command, uint64_t total_bytes)
    : command_(std::move(command)), total_(total_bytes), tty_(::isatty(2) != 0) {}

void ProgressLine::Update(uint64_t rows, uint64_t bytes) {
  rows_ = rows;
  bytes_ = bytes;
  const auto now = std::chrono::steady_clock::now();
  const auto every = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  // Nothing for the first second: short commands stay quiet.
  if (now - start_ < std::chrono::seconds(1) || now - last_ < every) return;
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
  char count[32];
  if (rows >= 1'000'000) std::snprintf(count, sizeof count, "%.2fM", rows / 1e6);
  else if (rows >= 10'000) std::snprintf(count, sizeof count, "%.0fk", rows / 1e3);
  else std::snprintf(count, sizeof count, "%llu", static_cast<unsigned long long>(rows));
  char tail[96] = "";
  if (total_ > 0 && bytes <= total_) {
    const double left = rate > 0 ? (total_ - bytes) / 1e6 / rate : 0;
    std::snprintf(tail, sizeof tail, "/%.0f MB (%.0f%%)  %.0f MB/s  ETA %.0f s", total_ / 1e6,
                  100.0 * bytes / total_, rate, left);
  } else {
    std::snprintf(tail, sizeof tail, " MB  %.0f MB/s", rate);
  }
  std::fprintf(stderr, "%svirga %s: %s rows  %.0f%s%s", tty_ ? "\r" : "", command_.c_str(), count,
               mb, tail, tty_ && !last ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace virga::cli
