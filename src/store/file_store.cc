#include "store/file_store.h"

#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

namespace virga {
namespace {

// Thread-safe strerror.
std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

Status ErrnoStatus(std::string_view key, std::string_view op, int err) {
  std::string m(key);
  m += ": ";
  m += op;
  m += ": ";
  m += ErrnoText(err);
  return Status::IOError(std::move(m));
}

Status NotFound(std::string_view key, const std::string& uri) {
  return Status::NotFound(std::string(key) + ": no such object in " + uri);
}

bool IsAbsentErrno(int err) { return err == ENOENT || err == ENOTDIR; }

class Fd {  // closes on scope exit
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Reads up to `n` bytes at `offset`; *got is less than n only at end of file.
Status ReadAt(int fd, uint64_t offset, size_t n, char* dst, size_t* got, std::string_view key) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(key, "read", errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  *got = done;
  return Status::OK();
}

}  // namespace

Result<std::shared_ptr<ObjectStore>> FileStore::Open(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("file:// store: empty directory path");
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(std::string(path), ec);
  if (ec) return Status::IOError("file://" + std::string(path) + ": " + ec.message());
  std::string root = p.lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st;
  if (::stat(root.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("file://" + root + ": exists and is not a directory");
    }
  } else {
    std::filesystem::create_directories(root, ec);
    if (ec) return Status::IOError("file://" + root + ": cannot create directory: " + ec.message());
  }
  return std::shared_ptr<ObjectStore>(new FileStore(std::move(root)));
}

std::string FileStore::PathOf(std::string_view key) const {
  std::string path = root_;
  if (path.back() != '/') path += '/';
  path += key;
  return path;
}

Status FileStore::MakeParentDirs(std::string_view key) const {
  // A concurrent Delete may prune a directory made a moment ago (PruneEmptyParents), so a
  // mkdir below it finds no parent (ENOENT): start again from the top, a few times.
  for (int attempt = 0;; ++attempt) {
    bool parent_pruned = false;
    for (size_t slash = key.find('/'); slash != std::string_view::npos;
         slash = key.find('/', slash + 1)) {
      std::string dir = PathOf(key.substr(0, slash));
      if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
        if (errno == ENOENT && attempt < 8) {
          parent_pruned = true;
          break;
        }
        return ErrnoStatus(key, "create directory " + dir, errno);
      }
    }
    if (!parent_pruned) return Status::OK();
  }
}

void FileStore::PruneEmptyParents(std::string_view key) const {
  for (size_t slash = key.rfind('/'); slash != std::string_view::npos && slash > 0;
       slash = key.rfind('/', slash - 1)) {
    if (::rmdir(PathOf(key.substr(0, slash)).c_str()) != 0) return;  // not empty: stop
  }
}

Status FileStore::Put(std::string_view key, std::string_view data) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  const std::string path = PathOf(key);
  // Retries cover a parent directory missing (first Put under it) or pruned
  // by a concurrent Delete between our mkdir and the write.
  for (int attempt = 0;; ++attempt) {
    Status s = WriteFileAtomically(path, data);
    if (!s.IsNotFound()) return s;
    if (attempt >= 8) return Status::IOError(s.message());
    VIRGA_RETURN_IF_ERROR(MakeParentDirs(key));
  }
}

Status FileStore::OpenForRead(std::string_view key, int* fd, uint64_t* size) const {
  *fd = -1;
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  Fd f(::open(PathOf(key).c_str(), O_RDONLY | O_CLOEXEC));
  if (f.get() < 0) {
    if (IsAbsentErrno(errno)) return NotFound(key, uri());
    return ErrnoStatus(key, "open", errno);
  }
  struct stat st;
  if (::fstat(f.get(), &st) != 0) return ErrnoStatus(key, "fstat", errno);
  if (!S_ISREG(st.st_mode)) return NotFound(key, uri());  // a "directory" is no object
  *size = static_cast<uint64_t>(st.st_size);
  *fd = f.Release();
  return Status::OK();
}

Status FileStore::Get(std::string_view key, std::string* out) {
  return GetRange(key, 0, UINT64_MAX, out);
}

Status FileStore::GetRange(std::string_view key, uint64_t offset, uint64_t length,
                           std::string* out) {
  int raw_fd;
  uint64_t size = 0;
  VIRGA_RETURN_IF_ERROR(OpenForRead(key, &raw_fd, &size));
  Fd fd(raw_fd);
  if (offset > size) {
    return Status::OutOfRange(std::string(key) + ": offset " + std::to_string(offset) +
                              " is beyond the end (size " + std::to_string(size) + ")");
  }
  size_t n = static_cast<size_t>(std::min(length, size - offset));
  out->resize(n);
  size_t got = 0;
  VIRGA_RETURN_IF_ERROR(ReadAt(fd.get(), offset, n, out->data(), &got, key));
  out->resize(got);  // only if someone truncated the file behind our back
  return Status::OK();
}

Status FileStore::ListDir(const std::string& dir_key, std::string_view prefix,
                          std::vector<ObjectInfo>* out) const {
  const std::string dir_path = dir_key.empty() ? root_ : PathOf(dir_key);
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) {
    if (!dir_key.empty() && IsAbsentErrno(errno)) return Status::OK();  // nothing there
    return ErrnoStatus(dir_key.empty() ? "(root)" : dir_key, "list " + dir_path, errno);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
  Status s;
  std::string key;
  for (;;) {
    errno = 0;
    const dirent* ent = ::readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) return ErrnoStatus(dir_key, "readdir " + dir_path, errno);
      break;
    }
    std::string_view name = ent->d_name;
    if (name == "." || name == ".." || name.find(kTempMarker) != std::string_view::npos) continue;
    key = dir_key.empty() ? std::string(name) : dir_key + "/" + std::string(name);
    struct stat st;
    if (::fstatat(::dirfd(dir), ent->d_name, &st, 0) != 0) {
      if (errno == ENOENT) continue;  // deleted while we listed
      return ErrnoStatus(key, "stat", errno);
    }
    if (S_ISDIR(st.st_mode)) {
      // Descend only where keys can still match: "<key>/" and prefix agree.
      size_t common = std::min(key.size() + 1, prefix.size());
      if ((key + "/").compare(0, common, prefix, 0, common) == 0) {
        VIRGA_RETURN_IF_ERROR(ListDir(key, prefix, out));
      }
    } else if (S_ISREG(st.st_mode) && key.starts_with(prefix)) {
      out->push_back({key, static_cast<uint64_t>(st.st_size)});
    }
  }
  return Status::OK();
}

Result<std::vector<ObjectInfo>> FileStore::List(std::string_view prefix) {
  std::vector<ObjectInfo> out;
  // Start at the deepest directory the prefix names. If that part of the
  // prefix breaks the key rules no key can match it (and walking it could
  // leave the root, e.g. "../").
  size_t slash = prefix.rfind('/');
  std::string dir_key(slash == std::string_view::npos ? "" : prefix.substr(0, slash));
  if (!dir_key.empty() && !ValidateObjectKey(dir_key).ok()) return out;
  if (slash == 0) return out;  // "/..." matches no key
  VIRGA_RETURN_IF_ERROR(ListDir(dir_key, prefix, &out));
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status FileStore::Delete(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  if (::unlink(PathOf(key).c_str()) != 0) {
    // Absent, or a directory (a prefix of other keys, not an object): nothing to delete.
    if (IsAbsentErrno(errno) || errno == EISDIR) return Status::OK();
    return ErrnoStatus(key, "delete", errno);
  }
  PruneEmptyParents(key);
  return Status::OK();
}

Result<ObjectInfo> FileStore::Stat(std::string_view key) {
  VIRGA_RETURN_IF_ERROR(ValidateObjectKey(key));
  struct stat st;
  if (::stat(PathOf(key).c_str(), &st) != 0) {
    if (IsAbsentErrno(errno)) return NotFound(key, uri());
    return ErrnoStatus(key, "stat", errno);
  }
  if (!S_ISREG(st.st_mode)) return NotFound(key, uri());
  return ObjectInfo{std::string(key), static_cast<uint64_t>(st.st_size)};
}

Result<bool> FileStore::Exists(std::string_view key) {
  Result<ObjectInfo> info = Stat(key);
  if (info.ok()) return true;
  if (info.status().IsNotFound()) return false;
  return info.status();
}

}  // namespace virga
