// libFuzzer target: arbitrary bytes as a model file. Byte 0 & 1 set: the
// checksum trailer is recomputed first, so the fuzzer reaches the header and
// row checks behind it. Invariants: no crash or out-of-bounds read
// (ASan/UBSan); a file that decodes re-encodes to one that decodes equal.
#include <xxhash.h>

#include <cstdlib>
#include <string>

#include "virga/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) && bytes.size() >= 8) {
    const uint64_t h = XXH3_64bits(bytes.data(), bytes.size() - 8);
    for (int i = 0; i < 8; ++i) bytes[bytes.size() - 8 + i] = static_cast<char>(h >> (8 * i));
  }
  auto m = virga::DecodeModel(bytes, "fuzz");
  if (!m.ok()) return 0;
  auto again = virga::EncodeModel(*m);
  if (!again.ok()) std::abort();
  auto back = virga::DecodeModel(*again, "fuzz-again");
  if (!back.ok() || back->keys != m->keys || back->header.training != m->header.training)
    std::abort();
  return 0;
}
