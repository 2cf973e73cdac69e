// The ByteSource of a local file or standard input: plain read(2) calls.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <system_error>

#include "io/byte_source.h"

namespace virga::io_internal {
namespace {

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

class FdSource final : public ByteSource {
 public:
  FdSource(int fd, bool owned) : fd_(fd), owned_(owned) {}
  ~FdSource() override {
    if (owned_) ::close(fd_);
  }
  FdSource(const FdSource&) = delete;
  FdSource& operator=(const FdSource&) = delete;

  Status Read(char* dst, size_t n, size_t* got) override {
    for (;;) {
      ssize_t r = ::read(fd_, dst, std::min<size_t>(n, SSIZE_MAX));
      if (r >= 0) {
        *got = static_cast<size_t>(r);
        return Status::OK();
      }
      if (errno != EINTR) return Status::IOError("read: " + ErrnoText(errno));
    }
  }

 private:
  const int fd_;
  const bool owned_;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenFileSource(const std::string& path,
                                                   const std::string& name, uint64_t offset) {
  if (path == "-") {
    if (offset != 0) return Status::InvalidArgument(name + ": standard input cannot start at a byte offset");
    return std::unique_ptr<ByteSource>(new FdSource(STDIN_FILENO, false));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string m = name + ": " + ErrnoText(err);
    return err == ENOENT ? Status::NotFound(std::move(m)) : Status::IOError(std::move(m));
  }
  if (offset != 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    const int err = errno;
    ::close(fd);
    return Status::IOError(name + ": seek to byte " + std::to_string(offset) + ": " + ErrnoText(err));
  }
  ::posix_fadvise(fd, static_cast<off_t>(offset), 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<ByteSource>(new FdSource(fd, /*owned=*/true));
}

}  // namespace virga::io_internal
