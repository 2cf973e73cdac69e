#include "virga/status.h"

#include <gtest/gtest.h>

namespace virga {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Status Quarter(int x, int* out) {
  VIRGA_ASSIGN_OR_RETURN(int h, Half(x));
  VIRGA_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::OK();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status().ok());
  Status s = Status::Corruption("k1: checksum mismatch");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.ToString(), "Corruption: k1: checksum mismatch");
  EXPECT_EQ(s.WithContext("load").message(), "load: k1: checksum mismatch");
  EXPECT_TRUE(Status().WithContext("x").ok());
}

TEST(Status, ResultPropagates) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "odd: 3");
}

TEST(Status, ResultFromOkStatusIsInternalError) {
  Result<int> r{Status::OK()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInternal);
}

}  // namespace
}  // namespace virga
