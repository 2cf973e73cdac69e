// The XML of S3's REST answers that S3Store reads and writes: error
// documents, ListObjectsV2 pages, the UploadId of a new multipart upload, and
// the body that completes one. The parsers take bytes from the network:
// malformed input is a Status (or an empty field), never a crash
// (fuzzed by s3_xml_fuzz.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga::s3 {

// <Error><Code>NoSuchKey</Code><Message>...</Message></Error>; both empty
// when `body` is not such a document (e.g. a HEAD answer, which has none).
struct ErrorDocument {
  std::string code, message;
};
ErrorDocument ParseError(std::string_view body);

// One page of a ListObjectsV2 answer.
struct ListPage {
  struct Entry {
    std::string name;  // the object's full name in the bucket
    uint64_t size = 0;
  };
  std::vector<Entry> entries;
  bool truncated = false;
  std::string next_token;  // NextContinuationToken, when truncated
};
// Corruption (naming what is wrong) if `body` is not a ListBucketResult, a
// size is not a decimal number, or a truncated page has no token.
Result<ListPage> ParseListPage(std::string_view body);

// The UploadId of an InitiateMultipartUploadResult; "" if absent.
std::string ParseUploadId(std::string_view body);

// The CompleteMultipartUpload body for parts 1..etags.size() (ETags as S3
// returned them, quotes included; XML-escaped here).
std::string CompleteMultipartXml(const std::vector<std::string>& etags);

}  // namespace virga::s3
