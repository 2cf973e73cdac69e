#include "tools/progress.h"

#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace virga::cli {
namespace {

std::string Read(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string text;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  return text;
}

TEST(ProgressLine, RowsTotalGivesPercentageRateAndEta) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressLine line("datagen", ProgressTotals{0, 4'000'000}, f, false, std::chrono::milliseconds(0));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    line.Update(1'000'000, 500'000'000);
    line.Finish();
  }
  const std::string text = Read(f);
  std::fclose(f);
  EXPECT_EQ(text.rfind("virga datagen: 1.00M/4.00M rows (25%)  500 MB  ", 0), 0u) << text;
  EXPECT_NE(text.find(" MB/s  ETA "), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\r'), std::string::npos) << "no carriage return off a terminal";
}

TEST(ProgressLine, TerminalRedrawsOneLineAndEndsIt) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressLine line("predict", ProgressTotals{2'000'000, 0}, f, true, std::chrono::milliseconds(0));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    line.Update(5000, 1'000'000);
    line.Update(9000, 2'000'000);
    line.Finish();
  }
  const std::string text = Read(f);
  std::fclose(f);
  EXPECT_EQ(text.rfind("\rvirga predict: 5000 rows  1/2 MB (50%)", 0), 0u) << text;
  EXPECT_NE(text.find("\rvirga predict: 9000 rows  2/2 MB (100%)"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressLine, QuietForShortCommandsAndBetweenLines) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressLine line("ingest", ProgressTotals{}, f, false, std::chrono::seconds(5));
    line.Update(10, 100);  // within the first second
    line.Finish();
  }
  EXPECT_EQ(Read(f), "");
  std::fclose(f);
}

}  // namespace
}  // namespace virga::cli
