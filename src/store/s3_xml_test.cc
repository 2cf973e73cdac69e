#include "store/s3_xml.h"

#include <gtest/gtest.h>

namespace virga::s3 {
namespace {

TEST(S3Xml, ErrorDocument) {
  ErrorDocument e = ParseError(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
      "<Message>The specified key does not exist.</Message><Key>a b</Key></Error>");
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.message, "The specified key does not exist.");
  for (std::string_view junk : {"", "not xml", "<Error>", "<Other><Code>x</Code></Other>"}) {
    ErrorDocument j = ParseError(junk);
    EXPECT_EQ(j.code, "") << junk;
  }
}

TEST(S3Xml, ListPage) {
  auto page = ParseListPage(
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
      "<IsTruncated>true</IsTruncated><Contents><Key>p/a &amp; b</Key><Size>12</Size></Contents>"
      "<Contents><Key>p/c</Key><Size>0</Size></Contents>"
      "<NextContinuationToken>1/x+y=</NextContinuationToken></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[0].name, "p/a & b");
  EXPECT_EQ(page->entries[0].size, 12u);
  EXPECT_EQ(page->entries[1].size, 0u);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "1/x+y=");
  auto last = ParseListPage("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->entries.empty());
  EXPECT_FALSE(last->truncated);
}

TEST(S3Xml, MalformedListingsAreCorruption) {
  for (std::string_view bad :
       {"", "<<<", "<Error><Code>x</Code></Error>",
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents>"
        "</ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"}) {
    auto page = ParseListPage(bad);
    EXPECT_EQ(page.status().code(), Status::Code::kCorruption) << bad;
  }
}

TEST(S3Xml, MultipartBodies) {
  EXPECT_EQ(ParseUploadId("<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>u-1</UploadId>"
                          "</InitiateMultipartUploadResult>"),
            "u-1");
  EXPECT_EQ(ParseUploadId("garbage"), "");
  EXPECT_EQ(CompleteMultipartXml({"\"e1\"", "\"e<2>\""}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag>"
            "</Part><Part><PartNumber>2</PartNumber><ETag>&quot;e&lt;2&gt;&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
}

}  // namespace
}  // namespace virga::s3
