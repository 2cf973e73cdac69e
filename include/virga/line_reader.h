// LineReader: streams the lines of a text file (plain, gzip or zstd) in
// constant memory, whatever the file's size. The file may be local (a path,
// "file://path", "-" for standard input) or an object in a store
// ("s3://bucket/raw/day0.gz", "mem://name/key"), read with ranged GETs of
// `object_chunk_bytes` while a background thread fetches the next
// `object_chunks_ahead` chunks, so decoding overlaps the store's latency.
//
// Compression is detected from the file's magic bytes (gzip 1f 8b, zstd
// 28 b5 2f fd), not its name. Lines end at '\n'; a trailing '\r' is removed;
// the last line may lack '\n'. A single line longer than `max_line_bytes` is
// an error naming the file and line. Concatenated gzip members and zstd
// frames (`cat a.gz b.gz`) read as one stream; bytes after the last complete
// member, or a member cut short, are Corruption.
//
// Cost: no allocation or copy per line; lines are views into one buffer of
// `buffer_bytes`, and only a line straddling two chunks is moved (to the
// buffer's front). The buffer grows only for a line longer than itself.
// Plain text streams at ~1.5-2 GB/s on one core (page-cached file); .gz and
// .zst at the speed of zlib's inflate / zstd's decoder.
//
// Thread safety: none; use one reader per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga {

struct LineReaderOptions {
  size_t buffer_bytes = 4 << 20;      // read/decompress chunk size
  size_t max_line_bytes = 64 << 20;   // longer lines are an error (ResourceExhausted)
  size_t object_chunk_bytes = 8 << 20;  // object URIs: bytes per ranged GET (~140 ms at 60 MB/s,
                                        // so 10 ms of latency per GET costs ~7%)
  size_t object_chunks_ahead = 2;       // object URIs: chunks fetched ahead while one is
                                        // decoded; memory: (this + 1) x object_chunk_bytes
  // A byte range [range_begin, range_end) of an uncompressed file (range_end
  // 0: to its end), so that parts of one large file can be read by different
  // functions: the reader returns the lines that START in the range, whole
  // (the last one read past range_end to its end). Together the ranges of a
  // partition of the file return each of its lines exactly once. Compressed
  // input cannot be split: InvalidArgument naming the file.
  uint64_t range_begin = 0;
  uint64_t range_end = 0;
};

class LineReader {
 public:
  virtual ~LineReader() = default;

  // Opens `path` ("-" is standard input; an object URI is read through its
  // store). NotFound / IOError name the path or URI.
  static Result<std::unique_ptr<LineReader>> Open(const std::string& path,
                                                  const LineReaderOptions& options = {});

  // Sets *line to the next line (without its terminator) and returns true,
  // or returns false at end of input. The view stays valid until the next
  // call. A read or decompression fault (including a truncated .gz/.zst) is
  // a non-OK status naming path and line ("data.gz:1234: ..."); once a call
  // fails, every later call returns the same status.
  virtual Result<bool> Next(std::string_view* line) = 0;

  // 1-based number of the line last returned (0 before the first); counted
  // from the start of the range when reading a byte range.
  virtual uint64_t line_number() const = 0;
  // Where the line last returned is, for messages: "PATH:LINE", or for a
  // byte range (whose line numbers are relative) "PATH at byte OFFSET".
  virtual std::string Where() const = 0;
  // Bytes read from the file or object so far (compressed bytes for .gz/.zst).
  virtual uint64_t file_bytes_read() const = 0;
  // Uncompressed bytes delivered so far, terminators included.
  virtual uint64_t text_bytes_read() const = 0;
  virtual const std::string& path() const = 0;
};

// Whether `path` (a local file or an object URI) starts with the gzip or zstd
// magic bytes, read cheaply (one small read or ranged GET).
Result<bool> IsCompressedInput(const std::string& path);

}  // namespace virga
