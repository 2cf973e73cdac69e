#include "virga/partition.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <random>

#include "alloc_counter_test_util.h"

namespace virga {
namespace {

constexpr Codec kCodecs[] = {Codec::kNone, Codec::kLz4, Codec::kZstd};

// Rows with 0..max_features features each; labels and values are distinct so
// a misplaced entry shows.
RowBlock MakeRows(size_t rows, size_t max_features, bool binary, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  RowBlock b;
  for (size_t r = 0; r < rows; ++r) {
    size_t n = rng() % (max_features + 1);
    for (size_t i = 0; i < n; ++i) {
      b.AddFeature(rng() % 100000, binary ? 1.0f : static_cast<float>(rng() % 1000) / 8);
    }
    b.EndRow(static_cast<float>(r % 3) - 1);
  }
  return b;
}

// Row-by-row equality; offsets may differ by a base (a slice).
void ExpectSameRows(const RowBlockView& a, const RowBlockView& b) {
  ASSERT_EQ(a.rows(), b.rows());
  ASSERT_EQ(a.nnz(), b.nnz());
  if (a.nnz() > 0) {  // with no entries there are no values either
    ASSERT_EQ(a.binary(), b.binary());
  }
  for (size_t r = 0; r < a.rows(); ++r) {
    ASSERT_EQ(a.labels[r], b.labels[r]) << "row " << r;
    auto ai = a.row_indices(r), bi = b.row_indices(r);
    ASSERT_TRUE(std::equal(ai.begin(), ai.end(), bi.begin(), bi.end())) << "row " << r;
    if (a.binary()) continue;
    auto av = a.row_values(r), bv = b.row_values(r);
    ASSERT_TRUE(std::equal(av.begin(), av.end(), bv.begin(), bv.end())) << "row " << r;
  }
}

std::string Encode(const RowBlockView& rows, Codec codec) {
  std::string out;
  PartitionEncodeOptions opts;
  opts.codec = codec;
  opts.min_saving = 0;  // exercise every codec even on incompressible rows
  Status s = EncodePartition(rows, opts, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

// The object's header names the codec actually used.
Codec StoredCodec(const std::string& obj) { return static_cast<Codec>(obj[6]); }

// Recomputes the checksum of an object whose bytes a test changed on
// purpose, so that the checks behind the checksum are reached.
void Reseal(std::string* obj) {
  uint64_t seed = XXH3_64bits(obj->data(), 32);
  uint64_t sum = XXH3_64bits_withSeed(obj->data() + 40, obj->size() - 40, seed);
  std::memcpy(obj->data() + 32, &sum, 8);
}

void ExpectCorruption(const std::string& bytes, const std::string& key, PartitionBuffer* buf,
                      const std::string& what = "") {
  Status s = DecodePartition(bytes, key, buf);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(s.message().rfind(key + ": ", 0), 0u) << s.message();
  if (!what.empty()) {
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  }
  EXPECT_EQ(buf->rows(), 0u);  // never partial or wrong rows
  EXPECT_EQ(buf->view().offsets.size(), 1u);
}

// AppendRows of views (whole, sliced mid-block, binary and valued) builds
// the block AddFeature and EndRow build, and all_ones() says the same.
TEST(RowBlock, AppendRowsMatchesAddFeature) {
  RowBlock binary, valued;
  for (uint32_t r = 0; r < 9; ++r) {
    for (uint32_t k = 0; k < r % 4; ++k) {
      binary.AddFeature(r * 10 + k, 1.0f);
      valued.AddFeature(r * 10 + k, k == 2 ? 1.0f : 0.5f * static_cast<float>(k + 1));
    }
    binary.EndRow(static_cast<float>(r % 2));
    valued.EndRow(static_cast<float>(r % 3));
  }
  const RowBlockView pieces[] = {binary.view().Slice(2, 7), valued.view().Slice(0, 3),
                                 binary.view(), valued.view().Slice(4, 9),
                                 valued.view().Slice(5, 5), valued.view().Slice(6, 7)};
  RowBlock got, want;
  bool ones_so_far = true;
  for (const RowBlockView& v : pieces) {
    got.AppendRows(v);
    for (size_t r = 0; r < v.rows(); ++r) {
      for (uint32_t q = v.offsets[r]; q < v.offsets[r + 1]; ++q) want.AddFeature(v.indices[q], v.value(q));
      want.EndRow(v.labels[r]);
    }
    ASSERT_EQ(got.labels(), want.labels());
    ASSERT_EQ(got.offsets(), want.offsets());
    ASSERT_EQ(got.indices(), want.indices());
    ASSERT_EQ(got.values(), want.values());
    EXPECT_EQ(got.all_ones(), want.all_ones());
    ones_so_far = ones_so_far && want.all_ones();
  }
  EXPECT_FALSE(ones_so_far);  // a valued piece with a value other than 1 was appended
  // Binary views alone keep a block all ones.
  RowBlock only_binary;
  only_binary.AppendRows(binary.view().Slice(1, 4));
  EXPECT_TRUE(only_binary.all_ones());
  EXPECT_EQ(only_binary.rows(), 3u);
}

TEST(Partition, CodecNames) {
  for (Codec c : kCodecs) EXPECT_EQ(*ParseCodecName(CodecName(c)), c);
  EXPECT_TRUE(ParseCodecName("gzip").status().IsInvalidArgument());
}

TEST(Partition, RoundTripAllCodecs) {
  PartitionBuffer buf;
  for (Codec codec : kCodecs) {
    for (bool binary : {true, false}) {
      SCOPED_TRACE(std::string(CodecName(codec)) + (binary ? " binary" : " valued"));
      RowBlock rows = MakeRows(500, 40, binary);
      std::string obj = Encode(rows.view(), codec);
      ASSERT_EQ(std::string_view(obj).substr(0, 4), "VGPT");
      ASSERT_EQ(StoredCodec(obj), codec);
      ASSERT_TRUE(DecodePartition(obj, "k", &buf).ok());
      ExpectSameRows(rows.view(), buf.view());
      EXPECT_EQ(buf.view().offsets[0], 0u);
    }
  }
}

TEST(Partition, CompressionShrinksRepetitiveData) {
  RowBlock rows;
  for (int r = 0; r < 1000; ++r) {
    for (uint32_t i = 0; i < 20; ++i) rows.AddFeature(i, 1.0f);
    rows.EndRow(1);
  }
  size_t raw = Encode(rows.view(), Codec::kNone).size();
  EXPECT_LT(Encode(rows.view(), Codec::kLz4).size(), raw / 4);
  EXPECT_LT(Encode(rows.view(), Codec::kZstd).size(), raw / 4);
}

TEST(Partition, IncompressibleRowsAreStoredRaw) {
  std::mt19937 rng(5);
  RowBlock rows;
  for (int r = 0; r < 1000; ++r) {
    for (int i = 0; i < 20; ++i) rows.AddFeature(rng(), 1.0f);
    rows.EndRow(static_cast<float>(rng()));
  }
  std::string obj;
  for (Codec codec : kCodecs) {
    PartitionEncodeOptions opts{codec};
    ASSERT_TRUE(EncodePartition(rows.view(), opts, &obj).ok());
    EXPECT_EQ(StoredCodec(obj), Codec::kNone) << CodecName(codec);
    PartitionBuffer buf;
    ASSERT_TRUE(DecodePartition(obj, "k", &buf).ok());
    ExpectSameRows(rows.view(), buf.view());
    opts.min_saving = 0;
    ASSERT_TRUE(EncodePartition(rows.view(), opts, &obj).ok());
    EXPECT_EQ(StoredCodec(obj), codec);
  }
  RowBlock repetitive;
  for (int r = 0; r < 1000; ++r) {
    for (uint32_t i = 0; i < 20; ++i) repetitive.AddFeature(i, 1.0f);
    repetitive.EndRow(1);
  }
  ASSERT_TRUE(EncodePartition(repetitive.view(), {Codec::kLz4}, &obj).ok());
  EXPECT_EQ(StoredCodec(obj), Codec::kLz4);
}

TEST(Partition, EmptyPartition) {
  RowBlock empty;
  PartitionBuffer buf;
  for (Codec codec : kCodecs) {
    std::string obj = Encode(empty.view(), codec);
    ASSERT_TRUE(DecodePartition(obj, "k", &buf).ok()) << CodecName(codec);
    EXPECT_EQ(buf.rows(), 0u);
    EXPECT_EQ(buf.view().nnz(), 0u);
    EXPECT_EQ(buf.view().offsets.size(), 1u);
  }
  // Rows without features.
  RowBlock featureless;
  featureless.EndRow(1);
  featureless.EndRow(0);
  ASSERT_TRUE(DecodePartition(Encode(featureless.view(), Codec::kLz4), "k", &buf).ok());
  ExpectSameRows(featureless.view(), buf.view());
}

TEST(Partition, SliceIsRebased) {
  RowBlock rows = MakeRows(100, 10, false);
  PartitionBuffer buf;
  for (auto [b, e] : {std::pair{0, 100}, {13, 57}, {99, 100}, {40, 40}}) {
    RowBlockView slice = rows.view().Slice(b, e);
    ASSERT_TRUE(DecodePartition(Encode(slice, Codec::kLz4), "k", &buf).ok());
    ExpectSameRows(slice, buf.view());
    EXPECT_EQ(buf.view().offsets[0], 0u);
    EXPECT_EQ(buf.view().indices.size(), slice.nnz());
  }
}

TEST(Partition, BufferReuse) {
  PartitionBuffer buf;
  RowBlock big = MakeRows(800, 30, false, 2), small = MakeRows(10, 5, true, 3);
  ASSERT_TRUE(DecodePartition(Encode(big.view(), Codec::kLz4), "k", &buf).ok());
  size_t cap = buf.capacity_bytes();
  EXPECT_GT(cap, 800u * 4);
  ASSERT_TRUE(DecodePartition(Encode(small.view(), Codec::kZstd), "k", &buf).ok());
  ExpectSameRows(small.view(), buf.view());  // values dropped: binary again
  ASSERT_TRUE(DecodePartition(Encode(big.view(), Codec::kLz4), "k", &buf).ok());
  ExpectSameRows(big.view(), buf.view());
  EXPECT_EQ(buf.capacity_bytes(), cap);  // nothing grew
}

TEST(Partition, EveryFlippedByteIsCorruption) {
  RowBlock rows = MakeRows(12, 6, false);
  PartitionBuffer buf;
  for (Codec codec : kCodecs) {
    const std::string obj = Encode(rows.view(), codec);
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      for (size_t i = 0; i < obj.size(); ++i) {
        std::string bad = obj;
        bad[i] = static_cast<char>(bad[i] ^ mask);
        SCOPED_TRACE(std::string(CodecName(codec)) + " byte " + std::to_string(i));
        ExpectCorruption(bad, "datasets/d/train/part-00007", &buf);
      }
    }
  }
}

TEST(Partition, EveryTruncationIsCorruption) {
  RowBlock rows = MakeRows(12, 6, true);
  PartitionBuffer buf;
  for (Codec codec : kCodecs) {
    const std::string obj = Encode(rows.view(), codec);
    for (size_t n = 0; n < obj.size(); ++n) {
      SCOPED_TRACE(std::string(CodecName(codec)) + " length " + std::to_string(n));
      ExpectCorruption(obj.substr(0, n), "part-3", &buf);
    }
    ExpectCorruption(obj + "x", "part-3", &buf, "trailing bytes");
  }
  ExpectCorruption("", "part-3", &buf, "truncated");
}

TEST(Partition, HeaderChecksNameTheReason) {
  RowBlock rows = MakeRows(5, 3, true);
  PartitionBuffer buf;
  std::string obj = Encode(rows.view(), Codec::kLz4);
  std::string bad = obj;
  bad[0] = 'X';
  ExpectCorruption(bad, "k", &buf, "bad magic");
  bad = obj;
  bad[4] = 2;
  ExpectCorruption(bad, "k", &buf, "unsupported partition format version 2");
  bad = obj;
  bad[6] = 9;
  ExpectCorruption(bad, "k", &buf, "unknown codec 9");
  bad = obj;
  bad[7] = 0x04;
  ExpectCorruption(bad, "k", &buf, "unknown flags");
  bad = obj;
  bad[8] = static_cast<char>(bad[8] + 1);  // rows
  ExpectCorruption(bad, "k", &buf, "does not match");
  bad = obj;
  bad[40] = static_cast<char>(bad[40] ^ 0x10);
  ExpectCorruption(bad, "k", &buf, "checksum mismatch");
}

// Checks behind the checksum: a forged object with a valid checksum still
// cannot produce bad rows or out-of-bounds reads.
TEST(Partition, ResealedGarbageIsStillCaught) {
  PartitionBuffer buf;
  RowBlock rows = MakeRows(50, 8, false);
  for (Codec codec : {Codec::kLz4, Codec::kZstd}) {
    std::string obj = Encode(rows.view(), codec);
    for (size_t i = 40; i < obj.size(); ++i) obj[i] = static_cast<char>(i * 31);
    Reseal(&obj);
    ExpectCorruption(obj, "k", &buf, "payload");
  }
  // Decreasing offsets (a forged writer): encode does not check them.
  const float labels[3] = {1, 2, 3};
  const uint32_t offsets[4] = {0, 5, 3, 6};
  const uint32_t indices[6] = {1, 2, 3, 4, 5, 6};
  RowBlockView forged{labels, offsets, indices, {}};
  ExpectCorruption(Encode(forged, Codec::kNone), "k", &buf, "offsets decrease at row 1");
  // Offsets not ending at nnz.
  std::string obj = Encode(rows.view(), Codec::kNone);
  uint32_t wrong = 1;
  std::memcpy(obj.data() + 40 + 4 * 50 + 4 * 50, &wrong, 4);  // offsets[50]
  Reseal(&obj);
  ExpectCorruption(obj, "k", &buf, "offsets");
}

// Headers with consistent counts and random payloads, resealed so they pass
// the checksum: decompression and the offsets check must still hold (run
// under ASan to catch any stray read).
TEST(Partition, RandomResealedObjectsNeverYieldBadRows) {
  std::mt19937 rng(99);
  PartitionBuffer buf;
  RowBlock rows = MakeRows(30, 6, false);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string obj = Encode(rows.view(), kCodecs[trial % 3]);
    const size_t n = obj.size() - 40;
    const size_t from = 40 + rng() % n;
    const size_t len = 1 + rng() % std::min<size_t>(16, obj.size() - from);
    for (size_t i = from; i < from + len; ++i) obj[i] = static_cast<char>(rng());
    Reseal(&obj);
    Status s = DecodePartition(obj, "k", &buf);
    if (s.ok()) {  // a change that left a valid partition: it must be self-consistent
      RowBlockView v = buf.view();
      ASSERT_EQ(v.offsets.front(), 0u);
      ASSERT_EQ(v.offsets.back(), v.indices.size());
      ASSERT_TRUE(std::is_sorted(v.offsets.begin(), v.offsets.end()));
    } else {
      ASSERT_TRUE(s.IsCorruption()) << s.ToString();
      ASSERT_EQ(buf.rows(), 0u);
    }
  }
}

TEST(Partition, SteadyStateDecodeAllocatesNothing) {
  RowBlock rows = MakeRows(2000, 20, false, 4);
  std::string objs[3];
  for (Codec codec : kCodecs) objs[static_cast<int>(codec)] = Encode(rows.view(), codec);
  PartitionBuffer buf;
  for (const std::string& obj : objs) ASSERT_TRUE(DecodePartition(obj, "k", &buf).ok());
  const uint64_t before = virga_test::ThreadAllocations();
  for (int round = 0; round < 3; ++round) {
    for (const std::string& obj : objs) ASSERT_TRUE(DecodePartition(obj, "k", &buf).ok());
  }
  EXPECT_EQ(virga_test::ThreadAllocations(), before);
}

TEST(Partition, LargeRandomRoundTrip) {
  PartitionBuffer buf;
  for (uint32_t seed = 10; seed < 15; ++seed) {
    RowBlock rows = MakeRows(4096, 39, seed % 2, seed);
    for (Codec codec : kCodecs) {
      ASSERT_TRUE(DecodePartition(Encode(rows.view(), codec), "k", &buf).ok());
      ExpectSameRows(rows.view(), buf.view());
    }
  }
}

}  // namespace
}  // namespace virga
