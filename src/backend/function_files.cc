#include "backend/function_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace virga::backend {
namespace {

// Reads up to `max` bytes of `fd` from `offset`.
std::string ReadAt(int fd, off_t offset, size_t max) {
  std::string out(max, '\0');
  size_t got = 0;
  while (got < max) {
    ssize_t n = ::pread(fd, out.data() + got, max - got, offset + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

}  // namespace

Status WriteFile(const std::string& path, std::string_view contents) {
  // Created 0600 (never readable by others, not even for an instant); a file
  // left by an earlier run is replaced, not reused with its old mode.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::IOError(fmt::format("unlink {}: {}", path, std::strerror(errno)));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IOError(fmt::format("open {}: {}", path, std::strerror(errno)));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IOError(fmt::format("write {}: {}", path, std::strerror(errno)));
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    return Status::IOError(fmt::format("close {}: {}", path, std::strerror(errno)));
  }
  return Status::OK();
}

FunctionOutput ReadFunctionOutput(const std::string& stdout_path, const std::string& stderr_path) {
  FunctionOutput out;
  int fd = ::open(stdout_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    out.output = ReadAt(fd, 0, kMaxOutputBytes + 1);
    if (out.output.size() > kMaxOutputBytes) {
      out.output.resize(kMaxOutputBytes);
      out.output_truncated = true;
    }
    ::close(fd);
  }
  fd = ::open(stderr_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      const off_t size = st.st_size;
      const off_t start = size > static_cast<off_t>(kErrorTailBytes)
                              ? size - static_cast<off_t>(kErrorTailBytes)
                              : 0;
      out.error_tail = ReadAt(fd, start, static_cast<size_t>(size - start));
    }
    ::close(fd);
  }
  return out;
}

}  // namespace virga::backend
