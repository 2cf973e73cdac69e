// Atomic writes of local files: the one way virga replaces a file's content.
//
// The bytes go to a temporary file beside the target, named
// <path>.virga-tmp-<16 hex>, created with the requested mode; Commit makes it
// the target with rename(2) (or link(2) when an existing file must be kept).
// A reader that opens `path` sees the old file or the new one, never a part.
// With `durable`, the data is fdatasync'd before the rename and the directory
// fsync'd after, so the new file also survives a crash or power loss.
//
// On any failure the temporary file is removed and the Status (IOError unless
// stated) names `path` and the failing step: "<path>: rename: No space left
// on device". A process killed mid-write leaves its temporary file behind;
// the marker lets listings skip it (FileStore reserves it in keys).
//
// Thread safety: distinct AtomicFile objects are independent; one object is
// used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga {

// Marks the temporary file of an in-flight atomic write.
inline constexpr std::string_view kAtomicTempMarker = ".virga-tmp-";

struct AtomicWriteOptions {
  // fdatasync the file before publishing it and fsync its directory after:
  // on return the new content survives a crash. false: still atomic for
  // readers, but not durable (for files rewritten often whose loss costs
  // little, like a job's status.json), and much cheaper.
  bool durable = true;
  // Permission bits of the new file (the process umask applies). The
  // temporary file has them from its creation, so a 0600 secret is never
  // readable by others, even half written.
  mode_t mode = 0666;
  // true: replace whatever file is at `path`. false: keep an existing file
  // and fail with AlreadyExists (the first of several racing writers wins).
  bool replace = true;
};

// A file being written; it appears at `path` only on Commit(). Destroying it
// without a successful Commit() removes the temporary file.
class AtomicFile {
 public:
  // Creates the temporary file beside `path`. NotFound naming `path` if its
  // directory does not exist; IOError for any other failure.
  static Result<AtomicFile> Create(std::string path, const AtomicWriteOptions& options = {});

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // The temporary file's descriptor, for writers that write(2) themselves
  // (errors they report should name path()). -1 after Commit or Abort.
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Writes all of `data` at the current end (retries short writes and EINTR).
  Status Append(std::string_view data);
  // Publishes the file at path(); see the options. Calling it again, or
  // after Abort, is InvalidArgument.
  Status Commit();
  // Discards the temporary file. Idempotent; a no-op after Commit.
  void Abort();

 private:
  AtomicFile(std::string path, std::string tmp, int fd, const AtomicWriteOptions& options)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd), options_(options) {}
  Status Fail(std::string_view step, int err);

  std::string path_;
  std::string tmp_;  // empty once committed or aborted
  int fd_ = -1;
  AtomicWriteOptions options_;
};

// Writes `data` as the whole content of `path` (Create + Append + Commit).
Status WriteFileAtomically(const std::string& path, std::string_view data,
                           const AtomicWriteOptions& options = {});

}  // namespace virga
