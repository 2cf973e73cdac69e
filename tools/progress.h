// A progress line on stderr for long commands (ingest, dump): on a terminal
// one line redrawn at most 5 times a second; otherwise one line every 5 s.
// "virga ingest: 1.20M rows  340/750 MB (45%)  120 MB/s  ETA 3 s".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace virga::cli {

class ProgressLine {
 public:
  // `total_bytes` 0: unknown (no percentage, no ETA).
  ProgressLine(std::string command, uint64_t total_bytes);
  // rows and bytes done so far.
  void Update(uint64_t rows, uint64_t bytes);
  // Ends the redrawn line on a terminal (call once, after the last Update).
  void Finish();

 private:
  void Print(uint64_t rows, uint64_t bytes, bool last);
  const std::string command_;
  const uint64_t total_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
  bool printed_ = false;
  uint64_t rows_ = 0, bytes_ = 0;
};

}  // namespace virga::cli
