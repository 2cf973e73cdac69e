#include "virga/dataset.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace virga {
namespace {

Manifest FullManifest() {
  Manifest m;
  m.name = "criteo-small_1.0";
  m.format = "criteo";
  m.codec = "zstd";
  m.hash_bits = 20;
  m.num_features = 1 << 20;
  m.test_fraction = 0.1;
  m.split_seed = 18446744073709551615ull;  // all 64 bits survive JSON
  m.train_rows = 300;
  m.test_rows = 30;
  m.train_nnz = 11700;
  m.test_nnz = 1170;
  m.skipped_lines = 2;
  m.input_bytes = 123456789012ull;
  m.sources = {"/data/day_0.gz", "/data/day_1.gz"};
  for (uint64_t i = 0; i < 5; ++i) {
    m.train.push_back({PartitionKey(m.name, false, i), 60, 2340, 9000 + i});
  }
  m.test.push_back({PartitionKey(m.name, true, 0), 30, 1170, 4000});
  m.label = {330, 0, 1, 80, "binary01"};
  m.numeric_features = {{3, 100, -1.5, 7.25, 40.5, 300.125}, {17, 5, 0, 1e9, 2e9, 4e18}};
  m.derived_from = "normalize(minmax) of criteo";
  m.created_at = "2024-05-01T12:00:00Z";
  return m;
}

void ExpectEqual(const Manifest& a, const Manifest& b) {
  EXPECT_EQ(ManifestToJson(a), ManifestToJson(b));
  EXPECT_EQ(a.split_seed, b.split_seed);
  ASSERT_EQ(a.train.size(), b.train.size());
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(a.train[i].key, b.train[i].key);
    EXPECT_EQ(a.train[i].bytes, b.train[i].bytes);
  }
  ASSERT_EQ(a.numeric_features.size(), b.numeric_features.size());
  for (size_t i = 0; i < a.numeric_features.size(); ++i) {
    EXPECT_EQ(a.numeric_features[i].sum_sq, b.numeric_features[i].sum_sq);
  }
  EXPECT_EQ(a.label.kind, b.label.kind);
  EXPECT_EQ(a.sources, b.sources);
}

// ManifestToJson of FullManifest with one field replaced by `value`.
std::string Edited(const std::string& pointer, const nlohmann::json& value) {
  nlohmann::json doc = nlohmann::json::parse(ManifestToJson(FullManifest()));
  doc[nlohmann::json::json_pointer(pointer)] = value;
  return doc.dump();
}

std::string ErrorOf(const std::string& json) {
  Result<Manifest> r = ManifestFromJson(json, "datasets/x/manifest.json");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  return r.status().message();
}

TEST(Dataset, Names) {
  EXPECT_TRUE(ValidateDatasetName("a").ok());
  EXPECT_TRUE(ValidateDatasetName("Criteo-1TB_v2.small").ok());
  EXPECT_TRUE(ValidateDatasetName(std::string(128, 'x')).ok());
  EXPECT_FALSE(ValidateDatasetName(std::string(129, 'x')).ok());
  for (const char* bad : {"", ".hidden", "a/b", "a b", "..", "ü", "a\\b"}) {
    Status s = ValidateDatasetName(bad);
    EXPECT_TRUE(s.IsInvalidArgument()) << bad;
  }
}

TEST(Dataset, Keys) {
  EXPECT_EQ(ManifestKey("x"), "datasets/x/manifest.json");
  EXPECT_EQ(PartitionKey("x", false, 42), "datasets/x/train/part-00042");
  EXPECT_EQ(PartitionKey("x", true, 0), "datasets/x/test/part-00000");
  EXPECT_EQ(PartitionKey("x", false, 123456), "datasets/x/train/part-123456");
}

TEST(Dataset, FeatureStatMath) {
  FeatureStat a{7}, b{7};
  for (double v : {1.0, 2.0, 3.0}) a.Merge({7, 1, v, v, v, v * v});
  EXPECT_EQ(a.count, 3u);
  EXPECT_DOUBLE_EQ(a.mean(), 2.0);
  EXPECT_DOUBLE_EQ(a.variance(), 2.0 / 3);
  EXPECT_EQ(a.min, 1.0);
  EXPECT_EQ(a.max, 3.0);
  b.Merge(a);               // into an empty stat: takes min/max, not 0
  b.Merge(FeatureStat{7});  // an empty stat changes nothing
  EXPECT_EQ(b.min, 1.0);
  EXPECT_EQ(b.count, 3u);
  b.Merge({7, 1, -4, -4, -4, 16});
  EXPECT_EQ(b.min, -4.0);
  EXPECT_EQ(b.max, 3.0);
  EXPECT_EQ(FeatureStat{}.variance(), 0.0);
  FeatureStat constant{1, 3, 0.1, 0.1, 0.3, 0.03};  // rounding must not go negative
  EXPECT_GE(constant.variance(), 0.0);
}

TEST(Dataset, ManifestJsonRoundTrip) {
  Manifest m = FullManifest();
  Result<Manifest> back = ManifestFromJson(ManifestToJson(m), "src");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectEqual(m, *back);
  // Defaults survive too.
  Manifest minimal;
  minimal.name = "m";
  back = ManifestFromJson(ManifestToJson(minimal), "src");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectEqual(minimal, *back);
}

TEST(Dataset, ManifestOptionalFieldsDefault) {
  Result<Manifest> m = ManifestFromJson(
      R"({"version":1,"name":"d","train":[{"key":"k","rows":3}],"test":[],"x":0})", "src");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->train[0].rows, 3u);
  EXPECT_EQ(m->label.kind, "binary01");
}

TEST(Dataset, ManifestBadFieldsAreNamed) {
  const std::string prefix = "manifest datasets/x/manifest.json: field ";
  EXPECT_EQ(ErrorOf(Edited("/train/3/rows", "12")),
            prefix + "'train[3].rows': expected unsigned integer");
  EXPECT_EQ(ErrorOf(Edited("/train/1/nnz", -5)),
            prefix + "'train[1].nnz': expected unsigned integer");
  EXPECT_EQ(ErrorOf(Edited("/train_rows", 1.5)),
            prefix + "'train_rows': expected unsigned integer");
  EXPECT_EQ(ErrorOf(Edited("/train/2", 7)), prefix + "'train[2]': expected object");
  EXPECT_EQ(ErrorOf(Edited("/test", "none")), prefix + "'test': expected array");
  EXPECT_EQ(ErrorOf(Edited("/sources/1", 3)), prefix + "'sources[1]': expected string");
  EXPECT_EQ(ErrorOf(Edited("/label/kind", "fuzzy")),
            prefix + "'label.kind': expected one of binary01, binary_pm1, real");
  EXPECT_EQ(ErrorOf(Edited("/label/min", "low")), prefix + "'label.min': expected number");
  EXPECT_EQ(ErrorOf(Edited("/numeric_features/0/index", 1ull << 33)),
            prefix + "'numeric_features[0].index': expected unsigned integer < 2^32");
  EXPECT_EQ(ErrorOf(Edited("/version", 2)), prefix + "'version': unsupported manifest version 2");
  EXPECT_EQ(ErrorOf(Edited("/hash_bits", 40)), prefix + "'hash_bits': expected 0..32");
  EXPECT_EQ(ErrorOf(Edited("/train/0/key", "")), prefix + "'train[0].key': empty");
  EXPECT_NE(ErrorOf(Edited("/name", "a/b")).find("field 'name': invalid dataset name"),
            std::string::npos);

  nlohmann::json doc = nlohmann::json::parse(ManifestToJson(FullManifest()));
  doc["train"][0].erase("rows");
  EXPECT_EQ(ErrorOf(doc.dump()), prefix + "'train[0].rows': missing");
  doc.erase("version");
  EXPECT_EQ(ErrorOf(doc.dump()), prefix + "'version': missing");

  EXPECT_NE(ErrorOf("{\"version\":").find("manifest datasets/x/manifest.json: invalid JSON"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("[1,2]"), "manifest datasets/x/manifest.json: expected a JSON object");
}

TEST(Dataset, WriteAndReadThroughStore) {
  auto store = ObjectStore::Open("mem://dataset_test_rw");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  Manifest m = FullManifest();
  ASSERT_TRUE(WriteManifest(**store, m).ok());
  Result<bool> exists = (*store)->Exists(ManifestKey(m.name));
  ASSERT_TRUE(exists.ok() && *exists);
  Result<Manifest> back = ReadManifest(**store, m.name);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectEqual(m, *back);

  Result<Manifest> missing = ReadManifest(**store, "nope");
  ASSERT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("dataset 'nope' not found in mem://dataset_test_rw"),
            std::string::npos)
      << missing.status().message();
  EXPECT_TRUE(ReadManifest(**store, "../x").status().IsInvalidArgument());

  Manifest bad = m;
  bad.name = "bad name";
  EXPECT_TRUE(WriteManifest(**store, bad).IsInvalidArgument());

  // A manifest copied under another dataset's key names the mismatch.
  ASSERT_TRUE((*store)->Put(ManifestKey("other"), ManifestToJson(m)).ok());
  Status s = ReadManifest(**store, "other").status();
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("does not match dataset 'other'"), std::string::npos);

  ASSERT_TRUE((*store)->Put(ManifestKey("broken"), "{").ok());
  s = ReadManifest(**store, "broken").status();
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("datasets/broken/manifest.json"), std::string::npos);
}

}  // namespace
}  // namespace virga

namespace virga {
namespace {

TEST(DatasetManifest, LargeFeatureStatsGoToASideObjectAndComeBack) {
  auto store = ObjectStore::Open("mem://dataset-side-stats");
  ASSERT_TRUE(store.ok());
  Manifest m;
  m.name = "wide";
  m.format = "libsvm";
  for (uint32_t i = 0; i < kInlineFeatureStats + 10; ++i)
    m.numeric_features.push_back({i * 3, i + 1u, -1.0 * i, 2.0 * i, 0.5 * i, 7.0 * i});
  ASSERT_TRUE(WriteManifest(**store, m).ok());
  std::string json;
  ASSERT_TRUE((*store)->Get(ManifestKey("wide"), &json).ok());
  EXPECT_LT(json.size(), 10000u);  // the statistics are not inline
  auto back = ReadManifest(**store, "wide");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->numeric_features.size(), m.numeric_features.size());
  for (size_t i = 0; i < m.numeric_features.size(); i += 997) {
    EXPECT_EQ(back->numeric_features[i].index, m.numeric_features[i].index);
    EXPECT_EQ(back->numeric_features[i].count, m.numeric_features[i].count);
    EXPECT_EQ(back->numeric_features[i].sum_sq, m.numeric_features[i].sum_sq);
  }
  // A damaged side object is Corruption naming it.
  std::string bytes;
  ASSERT_TRUE((*store)->Get(back->numeric_features_key, &bytes).ok());
  bytes[100] ^= 1;
  ASSERT_TRUE((*store)->Put(back->numeric_features_key, bytes).ok());
  auto bad = ReadManifest(**store, "wide");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption());
  EXPECT_NE(bad.status().message().find("feature-stats"), std::string::npos);
  for (size_t cut : {size_t{0}, size_t{23}, bytes.size() - 1})
    EXPECT_FALSE(DecodeFeatureStats(std::string_view(bytes).substr(0, cut), "k").ok());
}

}  // namespace
}  // namespace virga
