// libFuzzer target over the parsers of S3's XML answers (src/store/s3_xml.h):
// bytes from the network must give a Status or empty fields, never a crash,
// a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "store/s3_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)virga::s3::ParseError(body);
  (void)virga::s3::ParseListPage(body);
  (void)virga::s3::ParseUploadId(body);
  return 0;
}
