// Test helpers for normalization: small datasets kept as plain rows, written
// to a store with EncodePartition + WriteManifest, and reference statistics
// and scaling computed from the plain rows by straightforward loops,
// independently of the code under test.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "virga/dataset.h"
#include "virga/normalize.h"
#include "virga/object_store.h"
#include "virga/partition.h"
#include "virga/row_block.h"

namespace virga::testutil {

struct RawRow {
  float label = 0;
  std::vector<std::pair<uint32_t, float>> features;
};
using RawPartition = std::vector<RawRow>;

struct RawDataset {
  std::string format = "csv";
  std::vector<RawPartition> train;
  std::vector<RawPartition> test;
};

inline RowBlock ToBlock(const RawPartition& rows) {
  RowBlock block;
  for (const RawRow& r : rows) {
    for (const auto& [i, v] : r.features) block.AddFeature(i, v);
    block.EndRow(r.label);
  }
  return block;
}

// Reference statistics of one feature, from its list of values.
struct RefStat {
  std::vector<double> values;
  double min() const { return *std::min_element(values.begin(), values.end()); }
  double max() const { return *std::max_element(values.begin(), values.end()); }
  double mean() const {
    double s = 0;
    for (double v : values) s += v;
    return s / values.size();
  }
  double stddev() const {  // population, two-pass
    const double m = mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / values.size());
  }
  bool numeric() const {
    return std::any_of(values.begin(), values.end(), [](double v) { return v != 1.0; });
  }
};

inline std::map<uint32_t, RefStat> RefStats(const std::vector<RawPartition>& parts) {
  std::map<uint32_t, RefStat> stats;
  for (const RawPartition& p : parts) {
    for (const RawRow& r : p) {
      for (const auto& [i, v] : r.features) stats[i].values.push_back(v);
    }
  }
  return stats;
}

// The expected output: every partition scaled with the train statistics.
inline RawDataset RefNormalize(const RawDataset& in, NormalizeMethod method) {
  const std::map<uint32_t, RefStat> stats = RefStats(in.train);
  auto scale = [&](uint32_t i, float v) -> float {
    auto it = stats.find(i);
    if (it == stats.end() || !it->second.numeric()) return v;
    const RefStat& s = it->second;
    if (s.max() == s.min()) return 0.0f;
    if (method == NormalizeMethod::kMinMax) return (v - s.min()) / (s.max() - s.min());
    return (v - s.mean()) / s.stddev();
  };
  RawDataset out = in;
  for (auto* split : {&out.train, &out.test}) {
    for (RawPartition& p : *split) {
      for (RawRow& r : p) {
        for (auto& [i, v] : r.features) v = scale(i, v);
      }
    }
  }
  return out;
}

// A deterministic pseudo-random number in [0, 1).
inline double Uniform(uint64_t* state) {
  *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<double>(*state >> 11) / static_cast<double>(1ULL << 53);
}

// CSV-like rows: every row stores features 0..4.
//   0: numeric in [-50, 150) (test rows reach -1000 and 1000)
//   1: numeric in [0, 0.01)
//   2: constant 3.5 in train (test: 2 and 7)
//   3: always 1 (a binary indicator column)
//   4: 0 or 1 (numeric: stored zeros differ from 1)
// Train: partitions of 6, 6, 6, 6 and 3 rows; test: 4 and 4 rows.
inline RawDataset DenseDataset() {
  uint64_t state = 7;
  auto make = [&](size_t n, bool test) {
    RawPartition p;
    for (size_t r = 0; r < n; ++r) {
      RawRow row;
      row.label = Uniform(&state) < 0.5 ? 0.0f : 1.0f;
      float f0 = static_cast<float>(-50 + 200 * Uniform(&state));
      if (test && r == 0) f0 = 1000.0f;
      if (test && r == 1) f0 = -1000.0f;
      row.features = {{0, f0},
                      {1, static_cast<float>(0.01 * Uniform(&state))},
                      {2, test ? (r % 2 ? 2.0f : 7.0f) : 3.5f},
                      {3, 1.0f},
                      {4, Uniform(&state) < 0.5 ? 0.0f : 1.0f}};
      p.push_back(row);
    }
    return p;
  };
  RawDataset d;
  for (size_t n : {6, 6, 6, 6, 3}) d.train.push_back(make(n, false));
  for (size_t n : {4, 4}) d.test.push_back(make(n, true));
  return d;
}

// libsvm-like sparse rows mixing binary and numeric features:
//   5           numeric in [0, 10); also stored as 1 in a binary partition
//   3000000000  numeric in [-1, 1) (a hashed index: wide feature space)
//   100..119    binary indicators; 110 is 2.5 in one test row
//   77          numeric in the test split only
// train/0 mixed, train/1 binary without numeric features (stays binary),
// train/2 binary but holding feature 5 (becomes non-binary), train/3 mixed
// with an empty row; test/0 mixed, test/1 binary.
inline RawDataset SparseDataset() {
  uint64_t state = 11;
  auto binary = [&](RawRow* row) {
    for (uint32_t i = 100; i < 120; ++i) {
      if (Uniform(&state) < 0.3) row->features.push_back({i, 1.0f});
    }
  };
  auto mixed = [&](size_t n) {
    RawPartition p;
    for (size_t r = 0; r < n; ++r) {
      RawRow row;
      row.label = r % 3 == 0 ? 1.0f : -1.0f;
      if (r % 4 != 1) row.features.push_back({5, static_cast<float>(10 * Uniform(&state))});
      binary(&row);
      if (r % 2 == 0)
        row.features.push_back({3000000000u, static_cast<float>(2 * Uniform(&state) - 1)});
      p.push_back(row);
    }
    return p;
  };
  RawDataset d;
  d.format = "libsvm";
  d.train.push_back(mixed(8));
  RawPartition only_binary;
  for (int r = 0; r < 5; ++r) {
    RawRow row{1.0f, {{101, 1.0f}}};
    binary(&row);
    std::sort(row.features.begin(), row.features.end());
    row.features.erase(std::unique(row.features.begin(), row.features.end()), row.features.end());
    only_binary.push_back(row);
  }
  d.train.push_back(only_binary);
  RawPartition binary_with_5;
  for (int r = 0; r < 4; ++r) binary_with_5.push_back(RawRow{-1.0f, {{5, 1.0f}, {110, 1.0f}}});
  d.train.push_back(binary_with_5);
  d.train.push_back(mixed(6));
  d.train.back().push_back(RawRow{1.0f, {}});  // an empty row
  RawPartition test0 = mixed(5);
  std::erase_if(test0[0].features, [](const auto& f) { return f.first == 110; });
  test0[0].features.push_back({110, 2.5f});
  test0[1].features.push_back({5, 25.0f});  // row 1 has no feature 5 of its own
  test0[1].features.push_back({77, 0.3f});
  d.test.push_back(test0);
  d.test.push_back(only_binary);
  return d;
}

// Writes partitions and a manifest (numeric_features from RefStats).
inline Status WriteRawDataset(ObjectStore& store, const std::string& name, const RawDataset& d) {
  Manifest m;
  m.name = name;
  m.format = d.format;
  m.codec = "lz4";
  m.test_fraction = 0.2;
  m.created_at = "2024-01-01T00:00:00Z";
  m.sources = {"generated"};
  std::string bytes;
  for (bool test : {false, true}) {
    const auto& parts = test ? d.test : d.train;
    for (size_t i = 0; i < parts.size(); ++i) {
      RowBlock block = ToBlock(parts[i]);
      VIRGA_RETURN_IF_ERROR(EncodePartition(block.view(), PartitionEncodeOptions{}, &bytes));
      PartitionInfo info{PartitionKey(name, test, i), block.rows(), block.nnz(), bytes.size()};
      VIRGA_RETURN_IF_ERROR(store.Put(info.key, bytes));
      (test ? m.test_rows : m.train_rows) += info.rows;
      (test ? m.test_nnz : m.train_nnz) += info.nnz;
      (test ? m.test : m.train).push_back(info);
      for (const RawRow& r : parts[i]) {
        for (const auto& f : r.features) {
          m.num_features = std::max<uint64_t>(m.num_features, uint64_t{f.first} + 1);
        }
        m.label.count++;
        m.label.positives += r.label > 0;
        m.label.max = std::max<double>(m.label.max, r.label);
      }
    }
  }
  for (const auto& [i, s] : RefStats(d.train)) {
    if (!s.numeric()) continue;
    FeatureStat f{i, s.values.size(), s.min(), s.max(), 0, 0};
    for (double v : s.values) {
      f.sum += v;
      f.sum_sq += v * v;
    }
    m.numeric_features.push_back(f);
  }
  return WriteManifest(store, m);
}

}  // namespace virga::testutil
