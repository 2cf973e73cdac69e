// The parsers' OK path must not allocate once the RowBlock has capacity.
// Counts global operator new calls (replaced for this test binary).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "formats/formats_test_util.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// GCC cannot tell that operator new above is malloc, once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace virga::formats {
namespace {

// Parses `lines` once to warm up (headers, capacity), then again into a
// cleared block, counting allocations of the second pass.
uint64_t AllocationsParsing(LineParser* parser, const std::vector<std::string>& lines,
                            size_t skip_first) {
  RowBlock b;
  b.Reserve(1000, 100000);
  bool added = false;
  for (const std::string& line : lines) EXPECT_TRUE(parser->ParseLine(line, &b, &added).ok());
  b.Clear();
  const uint64_t before = g_allocations.load();
  for (size_t i = skip_first; i < lines.size(); ++i) {
    Status s = parser->ParseLine(lines[i], &b, &added);
    if (!s.ok()) ADD_FAILURE() << s.ToString();
  }
  return g_allocations.load() - before;
}

TEST(ParserAllocations, NoneOnTheOkPath) {
  std::vector<std::string> libsvm = {"-1 3:1 11:1 14:1", "+1 1:0.5 2:-3e-2 4294967295:7",
                                     "0 qid:3 5:1e-60 # comment", "", "# only a comment"};
  auto p = NewParser(Format::kLibsvm);
  EXPECT_EQ(AllocationsParsing(p.get(), libsvm, 0), 0u);

  std::string criteo = "1";
  for (int i = 1; i <= 13; ++i) criteo += "\t" + (i % 4 ? std::to_string(i * 977) : "");
  for (int i = 14; i < 40; ++i) criteo += i % 5 ? "\t68fd1e64" : "\t";
  auto c = NewParser(Format::kCriteo);
  EXPECT_EQ(AllocationsParsing(c.get(), {criteo, criteo, ""}, 0), 0u);

  auto csv = NewParser(Format::kCsv, {});
  EXPECT_EQ(AllocationsParsing(csv.get(), {"y,a,b", "1,2,0", "0, 1.5e3 ,-2", ""}, 1), 0u);

  auto ratings = NewParser(Format::kRatings);
  EXPECT_EQ(AllocationsParsing(
                ratings.get(),
                {"userId,movieId,rating,timestamp", "1,31,2.5,1260759144", "2,7,4", ""}, 1),
            0u);
}

TEST(ParserAllocations, CounterWorks) {
  const uint64_t before = g_allocations.load();
  auto* v = new std::vector<int>(10);
  delete v;
  EXPECT_GE(g_allocations.load() - before, 2u);
}

}  // namespace
}  // namespace virga::formats
