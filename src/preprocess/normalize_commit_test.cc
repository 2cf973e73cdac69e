// Tests of what Normalize() commits: the output manifest, the refusals, and
// that a failure leaves no output dataset behind.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "preprocess/normalize_test_util.h"
#include "virga/normalize.h"

namespace virga {
namespace {

using testutil::DenseDataset;
using testutil::RawDataset;
using testutil::RefNormalize;
using testutil::RefStats;
using testutil::SparseDataset;

class NormalizeCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    auto s = ObjectStore::Open(std::string("mem://normalize_commit_test.") + info->name());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = *s;
  }

  // Flips a byte in the middle of an object.
  void Corrupt(const std::string& key) {
    std::string bytes;
    ASSERT_TRUE(store_->Get(key, &bytes).ok());
    bytes[bytes.size() / 2] ^= 0x5a;
    ASSERT_TRUE(store_->Put(key, bytes).ok());
  }

  // Asserts that nothing of dataset `name` is stored.
  void ExpectNothingUnder(const std::string& name) {
    auto listed = store_->List("datasets/" + name + "/");
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->empty()) << listed->size() << " objects left, first "
                                 << (listed->empty() ? "" : (*listed)[0].key);
  }

  std::shared_ptr<ObjectStore> store_;
};

TEST_F(NormalizeCommitTest, OutputManifest) {
  const RawDataset d = SparseDataset();
  ASSERT_TRUE(testutil::WriteRawDataset(*store_, "raw", d).ok());
  auto r = Normalize(*store_, {"raw", "scaled", NormalizeMethod::kMinMax});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto in = ReadManifest(*store_, "raw");
  auto out = ReadManifest(*store_, "scaled");
  ASSERT_TRUE(in.ok() && out.ok());
  EXPECT_EQ(out->name, "scaled");
  EXPECT_EQ(out->derived_from, "normalize(minmax) of raw");
  EXPECT_EQ(out->format, in->format);
  EXPECT_EQ(out->codec, in->codec);
  EXPECT_EQ(out->num_features, in->num_features);
  EXPECT_EQ(out->train_rows, in->train_rows);
  EXPECT_EQ(out->test_rows, in->test_rows);
  EXPECT_EQ(out->train_nnz, in->train_nnz);
  EXPECT_EQ(out->test_nnz, in->test_nnz);
  EXPECT_EQ(out->label.count, in->label.count);
  EXPECT_EQ(out->label.positives, in->label.positives);
  EXPECT_EQ(out->sources, in->sources);
  EXPECT_FALSE(out->created_at.empty());
  uint64_t bytes = 0;
  for (bool test : {false, true}) {
    const auto& ip = test ? in->test : in->train;
    const auto& op = test ? out->test : out->train;
    ASSERT_EQ(op.size(), ip.size());
    for (size_t i = 0; i < op.size(); ++i) {
      EXPECT_EQ(op[i].key, PartitionKey("scaled", test, i));
      EXPECT_EQ(op[i].rows, ip[i].rows);
      EXPECT_EQ(op[i].nnz, ip[i].nnz);
      auto info = store_->Stat(op[i].key);
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(op[i].bytes, info->size);
      bytes += op[i].bytes;
    }
  }
  EXPECT_EQ(r->output_bytes, bytes);
  // numeric_features: the scaled train values, computed independently.
  const auto want = RefStats(RefNormalize(d, NormalizeMethod::kMinMax).train);
  std::vector<uint32_t> numeric;
  for (const auto& [i, s] : want) {
    if (s.numeric()) numeric.push_back(i);
  }
  EXPECT_EQ(numeric, (std::vector<uint32_t>{5, 3000000000u}));
  ASSERT_EQ(out->numeric_features.size(), numeric.size());
  for (const FeatureStat& f : out->numeric_features) {
    const auto& s = want.at(f.index);
    EXPECT_EQ(f.count, s.values.size());
    EXPECT_NEAR(f.min, 0.0, 1e-6);
    EXPECT_NEAR(f.max, 1.0, 1e-6);
    EXPECT_NEAR(f.mean(), s.mean(), 1e-5);
    EXPECT_NEAR(std::sqrt(f.variance()), s.stddev(), 1e-5);
  }
}

TEST_F(NormalizeCommitTest, RefusesExistingOrSameOutput) {
  ASSERT_TRUE(testutil::WriteRawDataset(*store_, "a", DenseDataset()).ok());
  ASSERT_TRUE(testutil::WriteRawDataset(*store_, "b", DenseDataset()).ok());
  auto r = Normalize(*store_, {"a", "b", NormalizeMethod::kMinMax});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kAlreadyExists);
  EXPECT_NE(r.status().message().find("'b'"), std::string::npos) << r.status().ToString();

  r = Normalize(*store_, {"a", "a", NormalizeMethod::kStandard});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("'a'"), std::string::npos);

  r = Normalize(*store_, {"a", "../x", NormalizeMethod::kStandard});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
}

TEST_F(NormalizeCommitTest, MissingInputIsNotFound) {
  auto r = Normalize(*store_, {"nosuch", "out", NormalizeMethod::kMinMax});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().message().find("nosuch"), std::string::npos) << r.status().ToString();
  ExpectNothingUnder("out");
}

// A corrupted train partition fails the statistics pass; a corrupted test
// partition fails the transform pass after train partitions were written.
TEST_F(NormalizeCommitTest, CorruptPartitionWritesNoOutput) {
  for (bool test : {false, true}) {
    const std::string in = test ? "in-test" : "in-train";
    const std::string out = test ? "out-test" : "out-train";
    ASSERT_TRUE(testutil::WriteRawDataset(*store_, in, DenseDataset()).ok());
    const std::string key = PartitionKey(in, test, 1);
    Corrupt(key);
    auto r = Normalize(*store_, {in, out, NormalizeMethod::kStandard});
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().ToString();
    auto exists = store_->Exists(ManifestKey(out));
    ASSERT_TRUE(exists.ok());
    EXPECT_FALSE(*exists);
    ExpectNothingUnder(out);
  }
}

TEST_F(NormalizeCommitTest, ManifestRowCountMismatchIsCorruption) {
  ASSERT_TRUE(testutil::WriteRawDataset(*store_, "in", DenseDataset()).ok());
  auto m = ReadManifest(*store_, "in");
  ASSERT_TRUE(m.ok());
  m->test[0].rows += 1;
  ASSERT_TRUE(WriteManifest(*store_, *m).ok());
  auto r = Normalize(*store_, {"in", "out", NormalizeMethod::kMinMax});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  EXPECT_NE(r.status().message().find(m->test[0].key), std::string::npos);
  ExpectNothingUnder("out");
}

}  // namespace
}  // namespace virga
