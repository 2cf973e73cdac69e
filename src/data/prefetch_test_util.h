// Helpers of the PrefetchIterator tests: a store decorator with a hook on
// Get, and a mem:// store of numbered rows whose order can be checked.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "virga/object_store.h"
#include "virga/partition.h"
#include "virga/prefetch_iterator.h"

namespace virga::prefetch_test {

// Forwards to a real store; runs `on_get` before each Get (to count, delay or
// fail it).
class HookStore final : public ObjectStore {
 public:
  using Hook = std::function<Status(std::string_view key)>;
  HookStore(std::shared_ptr<ObjectStore> inner, Hook on_get)
      : inner_(std::move(inner)), on_get_(std::move(on_get)) {}

  std::string uri() const override { return inner_->uri(); }
  Status Put(std::string_view k, std::string_view d) override { return inner_->Put(k, d); }
  Status Get(std::string_view k, std::string* out) override {
    VIRGA_RETURN_IF_ERROR(on_get_(k));
    return inner_->Get(k, out);
  }
  Status GetRange(std::string_view k, uint64_t o, uint64_t n, std::string* out) override {
    return inner_->GetRange(k, o, n, out);
  }
  Result<std::vector<ObjectInfo>> List(std::string_view p) override { return inner_->List(p); }
  Status Delete(std::string_view k) override { return inner_->Delete(k); }
  Result<bool> Exists(std::string_view k) override { return inner_->Exists(k); }
  Result<ObjectInfo> Stat(std::string_view k) override { return inner_->Stat(k); }

 private:
  std::shared_ptr<ObjectStore> inner_;
  Hook on_get_;
};

// A mem:// store named after the running test, holding `sizes.size()`
// partitions; row g (counted across partitions) has label g and features
// {g, g+1, ... } (g % 5 of them), so order and completeness can be checked.
struct Fixture {
  std::shared_ptr<ObjectStore> store;
  std::vector<std::string> keys;
  uint64_t total_rows = 0;
  uint64_t total_bytes = 0;
};

inline Fixture MakeFixture(const std::vector<size_t>& sizes) {
  Fixture f;
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  f.store = *ObjectStore::Open(std::string("mem://prefetch_") + info->name());
  std::string obj;
  for (size_t p = 0; p < sizes.size(); ++p) {
    RowBlock rows;
    for (size_t r = 0; r < sizes[p]; ++r, ++f.total_rows) {
      for (uint32_t i = 0; i < f.total_rows % 5; ++i) {
        rows.AddFeature(static_cast<uint32_t>(f.total_rows) + i, 1);
      }
      rows.EndRow(static_cast<float>(f.total_rows));
    }
    EXPECT_TRUE(EncodePartition(rows.view(), {}, &obj).ok());
    f.keys.push_back("ds/part-" + std::to_string(p));
    EXPECT_TRUE(f.store->Put(f.keys.back(), obj).ok());
    f.total_bytes += obj.size();
  }
  return f;
}

// Drains `it`, checking rows arrive in order, once each; returns rows seen.
inline uint64_t DrainInOrder(PrefetchIterator& it, const Fixture& f, size_t mb) {
  Minibatch batch;
  uint64_t next_row = 0;
  for (;;) {
    Result<bool> more = it.Next(&batch);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    EXPECT_GT(batch.rows.rows(), 0u);
    if (mb) {
      EXPECT_LE(batch.rows.rows(), mb);
    }
    EXPECT_EQ(*batch.key, f.keys[batch.partition]);
    for (size_t r = 0; r < batch.rows.rows(); ++r, ++next_row) {
      EXPECT_EQ(batch.rows.labels[r], static_cast<float>(next_row));
      auto idx = batch.rows.row_indices(r);
      EXPECT_EQ(idx.size(), next_row % 5);
      if (!idx.empty()) {
        EXPECT_EQ(idx[0], next_row);
      }
    }
  }
  return next_row;
}

}  // namespace virga::prefetch_test
