// A progress line on stderr for long commands (ingest, dump, datagen,
// predict): on a terminal one line redrawn at most 5 times a second;
// otherwise one line every 5 s ($VIRGA_PROGRESS_SECONDS: another interval).
// Nothing for the first second (or the interval, if shorter): short commands
// stay quiet.
//   "virga ingest: 1.20M rows  340/750 MB (45%)  120 MB/s  ETA 3 s"
//   "virga datagen: 1.20M/5.00M rows (24%)  610 MB  120 MB/s  ETA 12 s"
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace virga::cli {

struct ProgressTotals {
  uint64_t bytes = 0;  // 0: unknown (no percentage or ETA from bytes)
  uint64_t rows = 0;   // 0: unknown; else the percentage and ETA follow rows
};

class ProgressLine {
 public:
  ProgressLine(std::string command, uint64_t total_bytes)
      : ProgressLine(std::move(command), ProgressTotals{total_bytes, 0}) {}
  ProgressLine(std::string command, ProgressTotals totals);
  // For tests: the stream, whether it is a terminal, the interval off a terminal.
  ProgressLine(std::string command, ProgressTotals totals, FILE* out, bool tty,
               std::chrono::milliseconds every);
  // rows and bytes done so far.
  void Update(uint64_t rows, uint64_t bytes);
  // Ends the redrawn line on a terminal (call once, after the last Update).
  void Finish();

 private:
  void Print(uint64_t rows, uint64_t bytes, bool last);
  const std::string command_;
  const ProgressTotals total_;
  FILE* const out_;
  const bool tty_;
  const std::chrono::milliseconds every_;  // between lines
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
  bool printed_ = false;
  uint64_t rows_ = 0, bytes_ = 0;
};

// "950", "12.3k", "1.20M" (rows).
std::string RowCount(uint64_t rows);

}  // namespace virga::cli
