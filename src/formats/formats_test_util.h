// Helpers shared by the formats tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "virga/parser.h"
#include "virga/row_block.h"

namespace virga::formats {

// The contents of a RowBlock, for "unchanged after an error" checks.
struct RowBlockContents {
  std::vector<float> labels;
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> indices;
  std::vector<float> values;
  bool operator==(const RowBlockContents&) const = default;
};

inline RowBlockContents Contents(const RowBlock& b) {
  return {b.labels(), b.offsets(), b.indices(), b.values()};
}

inline std::unique_ptr<LineParser> NewParser(Format format, const ParseOptions& options = {}) {
  auto p = MakeParser(format, options);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

// Parses `line`, which must hold a row, into *out.
inline void ParseOk(LineParser* parser, std::string_view line, RowBlock* out) {
  bool added = false;
  Status s = parser->ParseLine(line, out, &added);
  ASSERT_TRUE(s.ok()) << "line '" << line << "': " << s.ToString();
  ASSERT_TRUE(added) << "line '" << line << "' added no row";
}

// Parses `line`, which must hold no row.
inline void ParseNoRow(LineParser* parser, std::string_view line) {
  RowBlock b;
  bool added = true;
  Status s = parser->ParseLine(line, &b, &added);
  ASSERT_TRUE(s.ok()) << "line '" << line << "': " << s.ToString();
  EXPECT_FALSE(added) << "line '" << line << "'";
  EXPECT_EQ(b.rows(), 0u);
  EXPECT_EQ(b.nnz(), 0u);
}

// Parses the bad `line` into a block already holding a row and checks the
// error is InvalidArgument with exactly `message`, and that the block is
// unchanged (and still usable).
inline void ExpectError(LineParser* parser, std::string_view line, std::string_view message,
                        RowBlock* block) {
  const RowBlockContents before = Contents(*block);
  bool added = true;
  Status s = parser->ParseLine(line, block, &added);
  EXPECT_TRUE(s.IsInvalidArgument()) << "line '" << line << "': " << s.ToString();
  EXPECT_EQ(s.message(), message) << "line '" << line << "'";
  EXPECT_FALSE(added);
  EXPECT_EQ(Contents(*block), before) << "line '" << line << "' changed the block";
  EXPECT_EQ(block->pending(), 0u);
}

inline std::vector<uint32_t> RowIndices(const RowBlock& b, size_t r) {
  return {b.indices().begin() + b.offsets()[r], b.indices().begin() + b.offsets()[r + 1]};
}
inline std::vector<float> RowValues(const RowBlock& b, size_t r) {
  return {b.values().begin() + b.offsets()[r], b.values().begin() + b.offsets()[r + 1]};
}

}  // namespace virga::formats
