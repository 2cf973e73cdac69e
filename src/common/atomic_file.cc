#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <system_error>
#include <utility>

#include "common/random_suffix.h"

namespace virga {
namespace {

// Thread-safe strerror.
std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

Status ErrnoStatus(const std::string& path, std::string_view step, int err) {
  std::string m = path;
  m += ": ";
  m += step;
  m += ": ";
  m += ErrnoText(err);
  return Status::IOError(std::move(m));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// fsync(2) of the directory holding `path`, so a rename in it is durable.
Status SyncDirectoryOf(const std::string& path) {
  const std::string dir = DirectoryOf(path);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    // Removed since the rename (a concurrent delete pruned it): nothing left to sync.
    if (errno == ENOENT) return Status::OK();
    return ErrnoStatus(path, "open directory " + dir, errno);
  }
  Status s;
  if (::fsync(fd) != 0) s = ErrnoStatus(path, "fsync directory " + dir, errno);
  ::close(fd);
  return s;
}

}  // namespace

Result<AtomicFile> AtomicFile::Create(std::string path, const AtomicWriteOptions& options) {
  // Retries cover a name collision (O_EXCL) and EINTR.
  for (int attempt = 0;; ++attempt) {
    std::string tmp = path;
    tmp += kAtomicTempMarker;
    tmp += RandomSuffix();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options.mode);
    if (fd >= 0) return AtomicFile(std::move(path), std::move(tmp), fd, options);
    const int err = errno;
    if (attempt >= 8 || (err != EEXIST && err != EINTR)) {
      Status s = ErrnoStatus(path, "create temporary file", err);
      return err == ENOENT ? Status::NotFound(s.message()) : s;
    }
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::exchange(other.tmp_, std::string())),
      fd_(std::exchange(other.fd_, -1)),
      options_(other.options_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abort();
    path_ = std::move(other.path_);
    tmp_ = std::exchange(other.tmp_, std::string());
    fd_ = std::exchange(other.fd_, -1);
    options_ = other.options_;
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abort(); }

void AtomicFile::Abort() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

Status AtomicFile::Fail(std::string_view step, int err) {
  Status s = ErrnoStatus(path_, step, err);
  Abort();
  return s;
}

Status AtomicFile::Append(std::string_view data) {
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": write after commit or abort");
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), std::min<size_t>(data.size(), SSIZE_MAX));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail("write", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return Status::InvalidArgument(path_ + ": commit after commit or abort");
  if (options_.durable && ::fdatasync(fd_) != 0) return Fail("fdatasync", errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return Fail("close", errno);
  if (options_.replace) {
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return Fail("rename", errno);
  } else {
    // link(2) fails if `path` exists, where rename(2) would replace it.
    if (::link(tmp_.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      Abort();
      if (err == EEXIST) return Status::AlreadyExists(path_ + ": already exists");
      return ErrnoStatus(path_, "link", err);
    }
    ::unlink(tmp_.c_str());
  }
  tmp_.clear();
  return options_.durable ? SyncDirectoryOf(path_) : Status::OK();
}

Status WriteFileAtomically(const std::string& path, std::string_view data,
                           const AtomicWriteOptions& options) {
  VIRGA_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path, options));
  VIRGA_RETURN_IF_ERROR(file.Append(data));
  return file.Commit();
}

}  // namespace virga
