// TextWriter: writes a text stream to a file, compressed by the file name's
// suffix (".gz" gzip, ".zst" zstd, otherwise plain; "-" is standard output).
// The file appears complete or, on failure, is removed: output goes to a
// temporary name in the same directory and is fdatasync'd and renamed by
// Close(). gzip uses level 1 (fast; .gz is for interoperability), zstd
// level 3 with a content checksum (smaller and faster than any gzip level).
// Thread safety: none; one writer per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga {

class TextWriter {
 public:
  virtual ~TextWriter() = default;  // without Close(): discards the output

  static Result<std::unique_ptr<TextWriter>> Open(const std::string& path);

  // Buffered; errors may surface at a later Write or at Close. The first
  // error sticks: later Writes and Close return it. Write after Close is
  // InvalidArgument.
  virtual Status Write(std::string_view text) = 0;
  // Flushes, finishes the compressed stream and publishes the file; on
  // error the temporary file is removed. Calling it again returns the
  // first call's status.
  virtual Status Close() = 0;
  // Uncompressed bytes written so far.
  virtual uint64_t bytes_written() const = 0;
};

}  // namespace virga
