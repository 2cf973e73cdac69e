// ByteSource: the raw bytes under a LineReader, read front to back: a local
// file or standard input through an fd, or an object in a store through
// ranged GETs fetched ahead in the background.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "virga/object_store.h"
#include "virga/status.h"

namespace virga::io_internal {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to n bytes into dst; *got == 0 only at the end of the input.
  // Errors need not name the input: the LineReader adds "path:line".
  virtual Status Read(char* dst, size_t n, size_t* got) = 0;
};

// A local file ("-" is standard input, not closed). NotFound / IOError
// messages start with `name` (the path as the user gave it).
// Reading starts at byte `offset` (a seekable file; standard input only at 0).
Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path,
                                                   const std::string& name, uint64_t offset = 0);

struct ObjectSourceOptions {
  size_t chunk_bytes = 8 << 20;  // bytes per ranged GET
  size_t chunks_ahead = 2;       // chunks fetched (one GET at a time) while one is read;
                                 // memory: chunks_ahead + 1 chunks
  int max_attempts = 3;          // tries per GET on Unavailable/IOError, 10, 20 .. ms apart
  uint64_t offset = 0;           // reading starts at this byte
  // Bytes from here on are expected to be read only in part (the tail of a
  // byte range: the end of the line that crosses it), so they are fetched in
  // small chunks (tail_chunk_bytes); UINT64_MAX: none.
  uint64_t soft_end = UINT64_MAX;
  size_t tail_chunk_bytes = 256 << 10;
};

// The object `key` of `store`, sized by one Stat; a background thread then
// fetches its chunks in order into a ring of chunks_ahead + 1 buffers, so the
// store's latency per request overlaps the reader's decoding. NotFound and
// other faults of the Stat are returned with `name` (the object's URI) in
// front.
Result<std::unique_ptr<ByteSource>> OpenObjectSource(std::shared_ptr<ObjectStore> store,
                                                     std::string key, const std::string& name,
                                                     const ObjectSourceOptions& options);

}  // namespace virga::io_internal
