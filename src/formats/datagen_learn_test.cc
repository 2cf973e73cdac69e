// The planted model must be learnable through the parser's encoding: a
// hashed logistic regression trained on parsed rows closes most of the gap
// between the base rate and the Bayes logloss.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "formats/criteo_model.h"
#include "formats/formats_test_util.h"
#include "virga/datagen.h"

namespace virga::formats {
namespace {

double LogLoss(double z, float y) {
  return y > 0 ? std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

TEST(DatagenLearn, HashedLogisticRegressionApproachesBayes) {
  constexpr uint64_t kRows = 150000, kTrain = 120000;
  constexpr int kBits = 18;
  const std::string path = ::testing::TempDir() + "/datagen_learn_" + std::to_string(getpid());
  CriteoGenOptions o;
  o.rows = kRows;
  o.seed = 3;
  o.out_path = path;
  ASSERT_TRUE(GenerateCriteo(o).ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path.c_str());

  // Parse every row, and the true logit of each from the model's weights.
  ParseOptions po;
  po.hash_bits = kBits;
  auto parser = NewParser(Format::kCriteo, po);
  const CriteoModel model(3);
  RowBlock b;
  std::vector<double> true_logit;
  std::string line;
  while (std::getline(text, line)) {
    ParseOk(parser.get(), line, &b);
    double z = model.bias();
    std::stringstream fields(line);
    std::string f;
    for (int i = 0; std::getline(fields, f, '\t'); ++i) {
      if (i >= 1 && i <= 13) {
        z += model.IntWeight(i,
                             f.empty() ? criteo::kMissingIntCode : criteo::IntCode(std::stoll(f)));
      } else if (i >= 14) {
        z += model.CatWeight(i, f);
      }
    }
    if (line.back() == '\t') z += model.CatWeight(39, "");  // getline drops a last empty field
    true_logit.push_back(z);
  }
  ASSERT_EQ(b.rows(), kRows);

  // One pass of AdaGrad over the training rows.
  std::vector<float> w(1u << kBits, 0), g2(1u << kBits, 0);
  double bias = 0, gb = 0;
  auto logit = [&](size_t r) {
    double z = bias;
    for (uint32_t k = b.offsets()[r]; k < b.offsets()[r + 1]; ++k) z += w[b.indices()[k]];
    return z;
  };
  for (size_t r = 0; r < kTrain; ++r) {
    const double g = 1 / (1 + std::exp(-logit(r))) - b.labels()[r];
    gb += g * g;
    bias -= 0.1 * g / std::sqrt(gb + 1e-8);
    for (uint32_t k = b.offsets()[r]; k < b.offsets()[r + 1]; ++k) {
      const uint32_t j = b.indices()[k];
      g2[j] += static_cast<float>(g * g);
      w[j] -= static_cast<float>(0.1 * g / std::sqrt(g2[j] + 1e-8));
    }
  }
  double lr = 0, bayes = 0, positives = 0;
  for (size_t r = kTrain; r < kRows; ++r) {
    lr += LogLoss(logit(r), b.labels()[r]);
    bayes += LogLoss(true_logit[r], b.labels()[r]);
    positives += b.labels()[r];
  }
  const double n = kRows - kTrain, p = positives / n;
  const double base = -(p * std::log(p) + (1 - p) * std::log(1 - p));
  lr /= n;
  bayes /= n;
  EXPECT_LT(bayes, base - 0.08) << "the planted model barely beats the base rate";
  EXPECT_LT(lr, base - 0.6 * (base - bayes))
      << "base " << base << " lr " << lr << " bayes " << bayes;
  EXPECT_GT(lr, bayes - 0.01) << "a learner beating the Bayes floor means leakage";
}

}  // namespace
}  // namespace virga::formats
