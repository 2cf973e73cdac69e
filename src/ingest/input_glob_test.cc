#include "ingest/input_glob.h"

#include <gtest/gtest.h>

#include "virga/object_store.h"

namespace virga::ingest_internal {
namespace {

using V = std::vector<std::string>;

class InputGlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = *ObjectStore::Open("mem://input_glob");
    for (const char* key : {"raw/day_0.txt", "raw/day_1.txt", "raw/day_10.txt", "raw/sub/day_2.txt",
                            "raw/other.csv", "rawx/day_3.txt"}) {
      ASSERT_TRUE(store->Put(key, "1 1:1\n").ok());
    }
  }
  static V Expand(const V& inputs) {
    auto r = ExpandInputs(inputs);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : V{"<error>"};
  }
};

TEST_F(InputGlobTest, WildcardsMatchWithinOneComponentSorted) {
  const std::string root = "mem://input_glob/";
  EXPECT_EQ(Expand({root + "raw/day_?.txt"}), (V{root + "raw/day_0.txt", root + "raw/day_1.txt"}));
  EXPECT_EQ(Expand({root + "raw/*.txt"}),
            (V{root + "raw/day_0.txt", root + "raw/day_1.txt", root + "raw/day_10.txt"}));
  EXPECT_EQ(Expand({root + "raw/*/*.txt"}), (V{root + "raw/sub/day_2.txt"}));
  EXPECT_EQ(Expand({root + "raw/day_[1-9]*"}),
            (V{root + "raw/day_1.txt", root + "raw/day_10.txt"}));
  EXPECT_EQ(Expand({root + "raw*/day_3.txt"}), (V{root + "rawx/day_3.txt"}));
}

TEST_F(InputGlobTest, OtherInputsAreKeptInOrder) {
  const V inputs = {"/data/a*.txt", "file:///data/*.gz", "mem://input_glob/raw/other.csv",
                    "mem://input_glob/raw/day_1*", "-"};
  EXPECT_EQ(Expand(inputs),
            (V{"/data/a*.txt", "file:///data/*.gz", "mem://input_glob/raw/other.csv",
               "mem://input_glob/raw/day_1.txt", "mem://input_glob/raw/day_10.txt", "-"}));
}

TEST_F(InputGlobTest, APatternMatchingNothingIsNamed) {
  for (const std::string pattern :
       {"mem://input_glob/raw/*.gz", "mem://input_glob/none/*", "mem://input_glob/raw/day_?"}) {
    auto r = ExpandInputs({"mem://input_glob/raw/day_0.txt", pattern});
    ASSERT_FALSE(r.ok()) << pattern;
    EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("\"" + pattern + "\""), std::string::npos)
        << r.status().ToString();
  }
  EXPECT_TRUE(ExpandInputs({"mem://*"}).status().IsInvalidArgument());  // no key at all
}

}  // namespace
}  // namespace virga::ingest_internal
