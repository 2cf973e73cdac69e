#include "tools/train_line.h"

#include <cmath>

#include <gtest/gtest.h>

namespace virga::cli {
namespace {

TrainProgress Typical() {
  TrainProgress p;
  p.seconds = 12.34;
  p.epoch = 2;
  p.epochs = 5;
  p.samples_per_second = 412345;
  p.metric = "logloss";
  p.test_metric = 0.45123;
  p.best_metric = 0.44981;
  p.test_auc = 0.77121;
  p.workers_alive = 4;
  return p;
}

TEST(TrainLine, TypicalLineKeepsTheImportantFiguresIn79Columns) {
  const std::string line = TrainLine(Typical());
  EXPECT_LE(line.size(), kTrainLineWidth) << line;
  EXPECT_EQ(line, " 12.3s  epoch 2/5  logloss 0.4512 (best 0.4498)  auc 0.7712  412k samples/s");
}

TEST(TrainLine, NarrowestFitsEvenWithHugeNumbers) {
  TrainProgress p = Typical();
  p.seconds = 987654;
  p.epoch = 4000000000u;
  p.epochs = 4000000000u;
  p.samples_per_second = 9.9e12;
  p.test_metric = 12345.678;
  p.best_metric = 12345.678;
  p.workers_alive = 100000;
  p.workers_failed = 123456;
  p.metric = "a-very-long-metric-name";
  const std::string line = TrainLine(p);
  EXPECT_LE(line.size(), kTrainLineWidth) << line;
  EXPECT_NE(line.find("epoch 4000000000/4000000000"), std::string::npos) << line;
}

TEST(TrainLine, WorkersAndBestShownWhenThereIsRoom) {
  TrainProgress p = Typical();
  p.metric = "rmse";
  p.test_auc = NAN;  // not a binary model
  p.workers_failed = 2;
  EXPECT_EQ(TrainLine(p, 100),
            " 12.3s  epoch 2/5  rmse 0.4512 (best 0.4498)  412k samples/s  4 workers  2 failed");
  // Narrower: the workers alive go first, then the failed ones, then the best value.
  EXPECT_EQ(TrainLine(p), " 12.3s  epoch 2/5  rmse 0.4512 (best 0.4498)  412k samples/s  2 failed");
  EXPECT_EQ(TrainLine(p, 60), " 12.3s  epoch 2/5  rmse 0.4512 (best 0.4498)  412k samples/s");
  EXPECT_EQ(TrainLine(p, 50), " 12.3s  epoch 2/5  rmse 0.4512  412k samples/s");
}

TEST(TrainLine, ElapsedAndCounts) {
  EXPECT_EQ(ElapsedText(5.04), "5.0s");
  EXPECT_EQ(ElapsedText(245), "4m05s");
  EXPECT_EQ(ElapsedText(7380), "2h03m");
  EXPECT_EQ(CountText(950), "950");
  EXPECT_EQ(CountText(12345), "12.3k");
  EXPECT_EQ(CountText(1.234e6), "1.23M");
}

}  // namespace
}  // namespace virga::cli
