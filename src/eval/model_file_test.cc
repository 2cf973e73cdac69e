#include "virga/model_file.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "virga/object_store.h"

namespace virga {
namespace {

ModelData Sample(uint32_t width = 2) {
  ModelData m;
  m.header.model = ModelKind::kLinearSvm;
  m.header.width = width;
  m.header.dataset = "a9a";
  m.header.num_features = 124;
  m.header.hash_bits = 0;
  m.header.training = R"({"optimizer":"adagrad","learning_rate":0.1})";
  m.header.created_at = "2026-01-02T03:04:05Z";
  for (uint64_t k : {0ull, 5ull, 123ull, 0xFFFFFFFFFFFFFFFFull}) {
    m.keys.push_back(k);
    for (uint32_t c = 0; c < width; ++c) m.weights.push_back(static_cast<float>(k % 7) - 0.25f * c);
  }
  return m;
}

// The documented layout, built by hand: magic, u32 header length, header,
// rows, XXH3-64 of everything before it.
std::string HandBuilt(const std::string& header, const std::string& rows) {
  std::string out = "VIRGAMDL";
  uint32_t len = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), 4);
  out += header;
  out += rows;
  uint64_t h = XXH3_64bits(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(&h), 8);
  return out;
}

std::string Row(uint64_t key, float w) {
  std::string s(reinterpret_cast<const char*>(&key), 8);
  s.append(reinterpret_cast<const char*>(&w), 4);
  return s;
}

std::string Header(int version, const std::string& format = "virga-model", int rows = 1) {
  return R"({"format":")" + format + R"(","version":)" + std::to_string(version) +
         R"(,"model":"lr","width":1,"rows":)" + std::to_string(rows) +
         R"(,"dataset":"d","num_features":10,"hash_bits":0,"training":{},"created_at":"x"})";
}

TEST(ModelFile, RoundTrip) {
  const ModelData m = Sample();
  auto bytes = EncodeModel(m);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(bytes->substr(0, 8), "VIRGAMDL");
  auto back = DecodeModel(*bytes, "mem");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->header.model, ModelKind::kLinearSvm);
  EXPECT_EQ(back->header.width, 2u);
  EXPECT_EQ(back->header.dataset, "a9a");
  EXPECT_EQ(back->header.num_features, 124u);
  EXPECT_EQ(back->header.created_at, m.header.created_at);
  EXPECT_EQ(back->header.version, 1);
  EXPECT_EQ(back->header.training, R"({"learning_rate":0.1,"optimizer":"adagrad"})");
  EXPECT_EQ(back->keys, m.keys);
  EXPECT_EQ(back->weights, m.weights);
}

TEST(ModelFile, DecodesTheDocumentedLayout) {
  auto m = DecodeModel(HandBuilt(Header(1), Row(7, 1.5f)), "hand");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->keys.size(), 1u);
  EXPECT_EQ(m->keys[0], 7u);
  EXPECT_EQ(m->weights[0], 1.5f);
  EXPECT_EQ(m->header.model, ModelKind::kLogisticRegression);
}

TEST(ModelFile, EveryTruncationIsAnError) {
  const std::string bytes = *EncodeModel(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto m = DecodeModel(std::string_view(bytes).substr(0, n), "cut.vm");
    ASSERT_FALSE(m.ok()) << n;
    EXPECT_TRUE(m.status().IsCorruption()) << n << ": " << m.status().ToString();
    EXPECT_NE(m.status().message().find("cut.vm"), std::string::npos);
  }
  // Cut inside the rows: the message says truncated, with the expected size.
  auto m = DecodeModel(std::string_view(bytes).substr(0, bytes.size() - 13), "cut.vm");
  EXPECT_NE(m.status().message().find("truncated"), std::string::npos) << m.status().ToString();
}

TEST(ModelFile, FlippedBytesAreErrors) {
  const std::string bytes = *EncodeModel(Sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x20;
    auto m = DecodeModel(bad, "flip.vm");
    ASSERT_FALSE(m.ok()) << i;
    const std::string msg = m.status().message();
    if (i < 8) {
      EXPECT_NE(msg.find("bad magic"), std::string::npos) << msg;
    } else if (i >= 12) {  // past the preamble: header, rows and trailer
      EXPECT_TRUE(msg.find("checksum mismatch") != std::string::npos) << i << ": " << msg;
    }
  }
}

TEST(ModelFile, UnsupportedVersionAndBadFields) {
  auto v2 = DecodeModel(HandBuilt(Header(2), Row(7, 1.5f)), "v2.vm");
  EXPECT_TRUE(v2.status().IsInvalidArgument());
  EXPECT_NE(v2.status().message().find("unsupported version 2"), std::string::npos)
      << v2.status().ToString();
  auto fmt = DecodeModel(HandBuilt(Header(1, "other"), Row(7, 1.5f)), "f.vm");
  EXPECT_NE(fmt.status().message().find("'format'"), std::string::npos);
  auto rows = DecodeModel(HandBuilt(Header(1, "virga-model", 2), Row(7, 1.5f)), "r.vm");
  EXPECT_TRUE(rows.status().IsCorruption());
  EXPECT_NE(rows.status().message().find("does not match"), std::string::npos);
  auto order = DecodeModel(HandBuilt(Header(1, "virga-model", 2), Row(7, 1) + Row(7, 2)), "o.vm");
  EXPECT_NE(order.status().message().find("ascending"), std::string::npos);
  auto nojson = DecodeModel(HandBuilt("{not json", ""), "j.vm");
  EXPECT_NE(nojson.status().message().find("not a JSON object"), std::string::npos);
  std::string h = Header(1);
  h.replace(h.find(R"("model":"lr")"), 12, R"("model":"gbdt")");
  auto kind = DecodeModel(HandBuilt(h, Row(7, 1.5f)), "k.vm");
  EXPECT_NE(kind.status().message().find("'model'"), std::string::npos) << kind.status().ToString();
  h = Header(1);
  h.replace(h.find(R"("width":1)"), 9, R"("width":"1")");
  auto width = DecodeModel(HandBuilt(h, Row(7, 1.5f)), "w.vm");
  EXPECT_NE(width.status().message().find("'width'"), std::string::npos) << width.status().ToString();
}

TEST(ModelFile, EncodeRejectsBrokenModels) {
  ModelData m = Sample();
  m.weights.pop_back();
  EXPECT_TRUE(EncodeModel(m).status().IsInvalidArgument());
  m = Sample();
  std::swap(m.keys[0], m.keys[1]);
  EXPECT_TRUE(EncodeModel(m).status().IsInvalidArgument());
  m = Sample();
  m.header.training = "[1,2]";
  EXPECT_TRUE(EncodeModel(m).status().IsInvalidArgument());
}

TEST(ModelFile, FromRowsFindAndGather) {
  std::vector<std::pair<uint64_t, std::vector<float>>> rows = {{2, {1.f}}, {9, {2.f}}, {40, {3.f}}};
  ModelFileHeader hd;
  auto m = ModelFromRows(hd, rows);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->Find(9).size(), 1u);
  EXPECT_EQ(m->Find(9)[0], 2.f);
  EXPECT_TRUE(m->Find(10).empty());
  std::vector<uint64_t> want = {1, 2, 3, 40, 41};
  std::vector<float> out(5, -1.f);
  m->Gather(want, out);
  EXPECT_EQ(out, (std::vector<float>{0, 1, 0, 3, 0}));

  rows[1].second.push_back(5.f);
  EXPECT_TRUE(ModelFromRows(hd, rows).status().IsInvalidArgument());
  rows[1] = {1, {2.f}};
  EXPECT_TRUE(ModelFromRows(hd, rows).status().IsInvalidArgument());
}

TEST(ModelFile, SaveAndLoadLocalFile) {
  const std::string dir = ::testing::TempDir() + "virga-model-file-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/m.vm";
  ASSERT_TRUE(SaveModel(path, Sample()).ok());
  auto back = LoadModel(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->keys, Sample().keys);
  // Only the file itself is left (no temporary).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), {}), 1);

  auto missing = LoadModel(dir + "/absent.vm");
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().message().find("absent.vm"), std::string::npos);
  EXPECT_FALSE(LoadModel(dir).ok());  // a directory
  EXPECT_FALSE(SaveModel(dir + "/no/such/dir/m.vm", Sample()).ok());

  { std::ofstream(dir + "/junk.vm") << "hello, world"; }
  auto junk = LoadModel(dir + "/junk.vm");
  EXPECT_NE(junk.status().message().find("bad magic"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(ModelFile, SaveAndLoadStoreUri) {
  // Any scheme the store registry knows: mem:// here, file:// below.
  const std::string uri = "mem://model-file-test/models/m.vmdl";
  ASSERT_TRUE(SaveModel(uri, Sample()).ok());
  auto store = ObjectStore::Open("mem://model-file-test");
  ASSERT_TRUE(store.ok());
  std::string bytes;
  ASSERT_TRUE((*store)->Get("models/m.vmdl", &bytes).ok());
  EXPECT_EQ(bytes, *EncodeModel(Sample()));
  auto back = LoadModel(uri);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->keys, Sample().keys);
  EXPECT_EQ(back->weights, Sample().weights);

  const std::string dir = ::testing::TempDir() + "virga-model-uri-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(SaveModel("file://" + dir + "/m.vmdl", Sample()).ok());
  auto local = LoadModel(dir + "/m.vmdl");  // the same file by its path
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_EQ(local->keys, Sample().keys);
  std::filesystem::remove_all(dir);

  auto missing = LoadModel("mem://model-file-test/models/absent.vmdl");
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("mem://model-file-test/models/absent.vmdl"),
            std::string::npos);
  EXPECT_TRUE(SaveModel("nosuch://b/m.vmdl", Sample()).IsInvalidArgument());
  EXPECT_TRUE(IsModelUri("s3://bucket/m.vmdl"));
  EXPECT_FALSE(IsModelUri("models/m.vmdl"));
}

}  // namespace
}  // namespace virga
