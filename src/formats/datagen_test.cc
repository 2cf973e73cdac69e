#include "virga/datagen.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "formats/criteo_model.h"
#include "formats/formats_test_util.h"
#include "virga/line_reader.h"

namespace virga::formats {
namespace {

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/datagen_test_" + std::to_string(getpid()) + "_" + name;
}

std::string ReadAll(const std::string& path) {
  auto reader = LineReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  std::string text;
  std::string_view line;
  while (reader.ok()) {
    Result<bool> more = (*reader)->Next(&line);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    text.append(line).push_back('\n');
  }
  return text;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

CriteoGenReport Generate(uint64_t rows, uint64_t seed, const std::string& path) {
  CriteoGenOptions o;
  o.rows = rows;
  o.seed = seed;
  o.out_path = path;
  auto r = GenerateCriteo(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : CriteoGenReport{};
}

double Softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

// Binary entropy in nats.
double Entropy(double p) { return -(p * std::log(p) + (1 - p) * std::log(1 - p)); }

TEST(Datagen, DeterministicAndWellFormed) {
  const std::string a = TempPath("a.tsv"), b = TempPath("b.tsv"), c = TempPath("c.tsv");
  const CriteoGenReport ra = Generate(20000, 1, a);
  const CriteoGenReport rb = Generate(20000, 1, b);
  Generate(20000, 2, c);
  const std::string text = ReadAll(a);
  EXPECT_EQ(text, ReadAll(b));
  EXPECT_NE(text, ReadAll(c));
  EXPECT_EQ(ra.rows, 20000u);
  EXPECT_EQ(ra.bytes, text.size());
  EXPECT_EQ(ra.bayes_logloss, rb.bayes_logloss);

  auto parser = NewParser(Format::kCriteo);
  RowBlock block;
  uint64_t lines = 0, positives = 0;
  for (std::string_view line : Split(text, '\n')) {
    if (line.empty()) continue;
    ++lines;
    ASSERT_EQ(Split(line, '\t').size(), 40u) << line;
    positives += line[0] == '1';
    ParseOk(parser.get(), line, &block);
  }
  EXPECT_EQ(lines, 20000u);
  EXPECT_EQ(block.rows(), 20000u);
  EXPECT_EQ(block.nnz(), 20000u * 39);
  EXPECT_EQ(ra.positives, positives);
  const double rate = static_cast<double>(positives) / lines;
  EXPECT_GT(rate, 0.22);
  EXPECT_LT(rate, 0.28);
  for (const auto& p : {a, b, c}) std::remove(p.c_str());
}

// Recomputes every row's probability from the written text and the model's
// hash-defined weights: the report must agree, and the planted model must
// beat the base rate by a wide margin.
TEST(Datagen, BayesLoglossMatchesRecomputation) {
  const std::string path = TempPath("bayes.tsv");
  const CriteoGenReport report = Generate(30000, 7, path);
  const CriteoModel model(7);
  double loss = 0, entropy = 0;
  uint64_t rows = 0, positives = 0, missing = 0;
  const std::string text = ReadAll(path);
  for (std::string_view line : Split(text, '\n')) {
    if (line.empty()) continue;
    const std::vector<std::string_view> f = Split(line, '\t');
    ASSERT_EQ(f.size(), 40u);
    double logit = model.bias();
    for (int i = 1; i <= 13; ++i) {
      missing += f[i].empty();
      const int64_t code =
          f[i].empty() ? criteo::kMissingIntCode : criteo::IntCode(std::stoll(std::string(f[i])));
      logit += model.IntWeight(i, code);
    }
    for (int i = 14; i < 40; ++i) {
      ASSERT_TRUE(f[i].empty() || f[i].size() == 8) << f[i];
      missing += f[i].empty();
      logit += model.CatWeight(i, f[i]);
    }
    const bool y = f[0] == "1";
    const double p = 1 / (1 + std::exp(-logit));
    loss += y ? Softplus(-logit) : Softplus(logit);
    entropy += p * Softplus(-logit) + (1 - p) * Softplus(logit);
    positives += y;
    ++rows;
  }
  ASSERT_EQ(rows, 30000u);
  EXPECT_NEAR(report.bayes_logloss, loss / rows, 1e-9);
  EXPECT_NEAR(report.expected_bayes_logloss, entropy / rows, 1e-9);
  EXPECT_GT(missing, rows * 2);  // several fields are often missing
  const double base = Entropy(static_cast<double>(positives) / rows);
  EXPECT_LT(report.bayes_logloss, base - 0.07) << "base-rate logloss " << base;
  EXPECT_GT(report.expected_bayes_logloss, 0.38);
  EXPECT_LT(report.expected_bayes_logloss, 0.50);
  std::remove(path.c_str());
}

// Planted interactions: the report's Bayes logloss is recomputed from the
// text with the model's pairwise terms; they make the labels more
// predictable than the linear part alone, and 0 changes nothing.
TEST(Datagen, PlantedInteractionsAreInTheLabels) {
  const std::string path = TempPath("pairs.tsv");
  CriteoGenOptions o;
  o.rows = 20000;
  o.seed = 7;
  o.interactions = 0.8;
  o.out_path = path;
  auto report = GenerateCriteo(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const CriteoModel model(7, 0.8);
  double loss = 0, pair_var = 0;
  uint64_t rows = 0;
  const std::string text = ReadAll(path);
  for (std::string_view line : Split(text, '\n')) {
    if (line.empty()) continue;
    const std::vector<std::string_view> f = Split(line, '\t');
    ASSERT_EQ(f.size(), 40u);
    double logit = model.bias();
    for (int i = 1; i <= 13; ++i) {
      logit += model.IntWeight(i, f[i].empty() ? criteo::kMissingIntCode
                                               : criteo::IntCode(std::stoll(std::string(f[i]))));
    }
    CriteoRow row{};
    for (int i = 14; i < 40; ++i) {
      logit += model.CatWeight(i, f[i]);
      row.cat_missing[i - 14] = f[i].empty();
      row.cats[i - 14] = f[i].empty() ? 0 : static_cast<uint32_t>(std::stoul(std::string(f[i]), nullptr, 16));
    }
    const double pairs = model.Interactions(row);
    pair_var += pairs * pairs;
    logit += pairs;
    loss += f[0] == "1" ? Softplus(-logit) : Softplus(logit);
    ++rows;
  }
  ASSERT_EQ(rows, 20000u);
  EXPECT_NEAR(report->bayes_logloss, loss / rows, 1e-9);
  EXPECT_GT(pair_var / rows, 0.5);  // 4 pairs of sd 0.8, most present
  const CriteoGenReport plain = Generate(20000, 7, TempPath("plain.tsv"));
  EXPECT_LT(report->bayes_logloss, plain.bayes_logloss - 0.03);
  EXPECT_EQ(CriteoModel(7, 0).Interactions(CriteoRow{}), 0.0);
  o.interactions = -1;
  EXPECT_FALSE(GenerateCriteo(o).ok());
  std::remove(path.c_str());
  std::remove(TempPath("plain.tsv").c_str());
}

TEST(Datagen, CompressedOutputHoldsTheSameText) {
  const std::string plain = TempPath("p.tsv"), gz = TempPath("p.tsv.gz"), zst = TempPath("p.zst");
  Generate(3000, 5, plain);
  const CriteoGenReport rg = Generate(3000, 5, gz);
  Generate(3000, 5, zst);
  const std::string text = ReadAll(plain);
  EXPECT_EQ(ReadAll(gz), text);
  EXPECT_EQ(ReadAll(zst), text);
  EXPECT_EQ(rg.bytes, text.size());
  for (const auto& p : {plain, gz, zst}) std::remove(p.c_str());
}

TEST(Datagen, ZeroRowsAndErrors) {
  const std::string path = TempPath("empty.tsv");
  const CriteoGenReport r = Generate(0, 1, path);
  EXPECT_EQ(r.rows, 0u);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_EQ(ReadAll(path), "");
  std::remove(path.c_str());

  CriteoGenOptions o;
  EXPECT_TRUE(GenerateCriteo(o).status().IsInvalidArgument());
  o.out_path = "/nonexistent-dir/x/y.tsv";
  EXPECT_FALSE(GenerateCriteo(o).ok());
}

}  // namespace
}  // namespace virga::formats
