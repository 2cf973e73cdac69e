#include "virga/successive_halving.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace virga {
namespace {

using Point = SuccessiveHalving::Point;

TEST(Percentile, LinearInterpolationAsNumpy) {
  // numpy.percentile([4, 1, 3, 2], q) for q = 0, 33.333.., 50, 100: 1, 2, 2.5, 4.
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 0), 1.0);
  EXPECT_NEAR(Percentile({4, 1, 3, 2}, 100.0 / 3), 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({4, 1, 3, 2}, 100), 4.0);
  EXPECT_DOUBLE_EQ(Percentile({0.5}, 33), 0.5);
  EXPECT_DOUBLE_EQ(Percentile({1, INFINITY}, 0), 1.0);  // not inf * 0
  EXPECT_TRUE(std::isinf(Percentile({INFINITY, INFINITY}, 50)));
}

TEST(SuccessiveHalving, RungsAndValidation) {
  auto sh = SuccessiveHalving::Create(3);
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(sh->Rungs(9), (std::vector<double>{1, 3}));  // full / eta^2, times eta, below full
  auto m = SuccessiveHalving::Create(2, 0.5);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->Rungs(4), (std::vector<double>{0.5, 1, 2}));
  auto t = SuccessiveHalving::Create(3, 0, SuccessiveHalving::Resource::kSeconds, 18);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Rungs(/*ignored*/ 5), (std::vector<double>{2, 6}));
  EXPECT_TRUE(SuccessiveHalving::Create(1).status().IsInvalidArgument());
  EXPECT_TRUE(SuccessiveHalving::Create(NAN).status().IsInvalidArgument());
  EXPECT_TRUE(SuccessiveHalving::Create(3, -1).status().IsInvalidArgument());
  auto no_max = SuccessiveHalving::Create(3, 0, SuccessiveHalving::Resource::kSeconds);
  EXPECT_TRUE(no_max.status().IsInvalidArgument());
  EXPECT_NE(no_max.status().message().find("max_resource"), std::string::npos);
}

TEST(SuccessiveHalving, LossAtInterpolatesBetweenEvaluations) {
  auto sh = SuccessiveHalving::Create(3).value();
  // 100 training rows: samples 50, 150, 400 are 0.5, 1.5, 4 epochs.
  const std::vector<Point> h = {{1, 50, 0.7}, {2, 150, 0.5}, {3, 400, 0.4}};
  EXPECT_FALSE(sh.LossAt(h, 5, 100).has_value());         // not reached yet
  EXPECT_DOUBLE_EQ(*sh.LossAt(h, 0.25, 100), 0.7);         // before the first evaluation
  EXPECT_DOUBLE_EQ(*sh.LossAt(h, 1.0, 100), 0.6);          // halfway between 0.5 and 1.5
  EXPECT_NEAR(*sh.LossAt(h, 3.0, 100), 0.5 - 0.1 * 0.6, 1e-12);
  const std::vector<Point> nan_first = {{1, 50, NAN}, {2, 150, 0.5}};
  EXPECT_DOUBLE_EQ(*sh.LossAt(nan_first, 1.0, 100), 0.5);  // no finite point before it
  auto t = SuccessiveHalving::Create(3, 0, SuccessiveHalving::Resource::kSeconds, 9).value();
  EXPECT_DOUBLE_EQ(*t.LossAt(h, 1.5, 100), 0.6);           // seconds, not epochs
}

TEST(SuccessiveHalving, DecideKeepsAboutOneInEta) {
  auto sh = SuccessiveHalving::Create(3).value();
  EXPECT_TRUE(sh.Decide(1, 0.50));   // the first always continues
  EXPECT_FALSE(sh.Decide(1, 0.60));  // above the 33rd percentile of {0.50}
  EXPECT_TRUE(sh.Decide(1, 0.40));   // better than all
  // seen {0.50, 0.60, 0.40}: 33.3rd percentile = 0.4 + 0.667 * 0.1 = 0.4667.
  EXPECT_TRUE(sh.Decide(1, 0.46));
  EXPECT_FALSE(sh.Decide(1, 0.47));
  EXPECT_FALSE(sh.Decide(1, NAN));   // a diverged run stops
  EXPECT_TRUE(sh.Decide(3, 0.9));    // rungs are separate
  int kept = 0;
  auto many = SuccessiveHalving::Create(3).value();
  for (int i = 0; i < 300; ++i) kept += many.Decide(1, std::fmod(i * 0.618034, 1.0));
  EXPECT_GT(kept, 60);
  EXPECT_LT(kept, 140);
}

}  // namespace
}  // namespace virga
