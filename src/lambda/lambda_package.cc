#include "lambda/lambda_package.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include <cstdio>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

extern char** environ;

namespace virga::lambda {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

// Runs argv (PATH searched), returning its stdout; IOError when it cannot
// start or exits non-zero. Its stderr goes to ours.
Result<std::string> RunCapture(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Errno("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return Status::IOError(fmt::format("cannot run {}: {}", argv[0], std::strerror(rc)));
  }
  std::string out;
  char buf[16384];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::IOError(fmt::format("{} {} failed (wait status {:#x}): {}", argv[0], argv.back(),
                                       status, out.substr(0, 300)));
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "path (0x...)" -> "path".
std::string_view BeforeAddress(std::string_view s) {
  size_t paren = s.rfind(" (");
  return Trim(paren == std::string_view::npos ? s : s.substr(0, paren));
}

std::string FormatMiB(uint64_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

// Temporary files removed on scope exit.
class TempFiles {
 public:
  ~TempFiles() {
    std::error_code ec;
    for (const std::string& p : paths_) fs::remove(p, ec);
  }
  const std::string& Add(std::string path) { return paths_.emplace_back(std::move(path)); }

 private:
  std::vector<std::string> paths_;
};

Result<std::string> SelfOrBinary(const std::string& binary) {
  std::error_code ec;
  fs::path p = fs::canonical(binary.empty() ? "/proc/self/exe" : binary, ec);
  if (ec) return Status::NotFound(fmt::format("binary '{}': {}", binary, ec.message()));
  if (!fs::is_regular_file(p)) return Status::InvalidArgument("not a file: " + p.string());
  return p.string();
}

// The files of the package, in zip order (bootstrap first), without the zip.
Result<std::vector<PackagedFile>> PlanFiles(const PackageOptions& options,
                                            const std::string& binary, std::string* loader_name,
                                            TempFiles* temps) {
  VIRGA_ASSIGN_OR_RETURN(std::vector<SharedObject> objects, ResolveSharedObjects(binary));
  std::vector<PackagedFile> files;
  files.push_back({"bootstrap", "", 0, 0755});
  std::string shipped = binary;
  if (options.strip_debug) {
    shipped = temps->Add(options.zip_path + ".virga.tmp");
    auto stripped = RunCapture({"strip", "--strip-debug", "-o", shipped, binary});
    if (!stripped.ok()) {
      return stripped.status().WithContext("stripping the binary (--no-strip ships it as is)");
    }
  }
  files.push_back({"virga", shipped, 0, 0755});
  for (const SharedObject& so : objects) {
    if (so.loader) *loader_name = so.name;
    files.push_back({"lib/" + so.name, so.path, 0, so.loader ? 0755u : 0644u});
  }
  if (loader_name->empty()) return Status::InvalidArgument("ldd found no dynamic loader");
  if (!options.ca_bundle.empty())
    files.push_back({"certs/ca-certificates.crt", options.ca_bundle, 0, 0644});
  for (PackagedFile& f : files) {
    if (f.source.empty()) continue;
    std::error_code ec;
    f.bytes = fs::file_size(f.source, ec);
    if (ec) return Status::NotFound(fmt::format("{}: {}", f.source, ec.message()));
  }
  return files;
}

Status ZipError(zip_t* z, const std::string& what) {
  return Status::IOError(fmt::format("{}: {}", what, zip_strerror(z)));
}

// Writes `files` (bootstrap's text given) to `path` with their modes.
Status WriteZip(const std::string& path, const std::vector<PackagedFile>& files,
                const std::string& bootstrap) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (z == nullptr) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    Status s = Status::IOError(fmt::format("{}: {}", path, zip_error_strerror(&ze)));
    zip_error_fini(&ze);
    return s;
  }
  auto fail = [&](const std::string& what) {
    Status s = ZipError(z, what);
    zip_discard(z);
    return s;
  };
  std::vector<std::string> dirs;  // entries added so far, each before its first file
  for (const PackagedFile& f : files) {
    const size_t slash = f.name.find('/');
    if (slash != std::string::npos &&
        std::find(dirs.begin(), dirs.end(), f.name.substr(0, slash + 1)) == dirs.end()) {
      const std::string& dir = dirs.emplace_back(f.name.substr(0, slash + 1));
      zip_int64_t idx = zip_dir_add(z, dir.c_str(), ZIP_FL_ENC_UTF_8);
      if (idx < 0) return fail(dir);
      zip_file_set_external_attributes(z, static_cast<zip_uint64_t>(idx), 0, ZIP_OPSYS_UNIX,
                                       static_cast<zip_uint32_t>(S_IFDIR | 0755) << 16);
    }
    zip_source_t* src = f.source.empty()
                            ? zip_source_buffer(z, bootstrap.data(), bootstrap.size(), 0)
                            : zip_source_file(z, f.source.c_str(), 0, 0);
    if (src == nullptr) return fail(f.name);
    zip_int64_t idx = zip_file_add(z, f.name.c_str(), src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
    if (idx < 0) {
      zip_source_free(src);
      return fail(f.name);
    }
    const auto i = static_cast<zip_uint64_t>(idx);
    if (zip_file_set_external_attributes(z, i, 0, ZIP_OPSYS_UNIX,
                                         static_cast<zip_uint32_t>(S_IFREG | f.mode) << 16) < 0 ||
        zip_set_file_compression(z, i, ZIP_CM_DEFLATE, 0) < 0) {
      return fail(f.name);
    }
  }
  if (zip_close(z) != 0) return fail("writing " + path);  // reads the sources and compresses now
  return Status::OK();
}

}  // namespace

std::string BootstrapScript(const std::string& loader_name) {
  return fmt::format(R"(#!/bin/sh
# The bootstrap of virga's AWS Lambda package (custom runtime provided.al2023,
# x86_64), made by `virga deploy lambda`. It runs virga through the dynamic
# loader shipped in lib/, with lib/ as the only library path, so no library of
# the host (its older glibc included) is ever loaded.
case "$0" in */*) here="${{0%/*}}" ;; *) here=. ;; esac
root="${{LAMBDA_TASK_ROOT:-$here}}"
if [ -z "${{AWS_CA_BUNDLE:-}}" ] && [ -f "$root/certs/ca-certificates.crt" ]; then
  AWS_CA_BUNDLE="$root/certs/ca-certificates.crt"
  export AWS_CA_BUNDLE
fi
unset LD_LIBRARY_PATH LD_PRELOAD
exec "$root/lib/{0}" --library-path "$root/lib" "$root/virga" lambda-runtime "$@"
)",
                     loader_name);
}

Result<std::vector<SharedObject>> ResolveSharedObjects(const std::string& binary) {
  VIRGA_ASSIGN_OR_RETURN(std::string out, RunCapture({"ldd", binary}));
  std::vector<SharedObject> objects;
  std::string_view rest = out;
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, eol));
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.empty()) continue;
    if (line.find("not a dynamic executable") != std::string_view::npos) {
      return Status::InvalidArgument(binary + " is not dynamically linked");
    }
    SharedObject so;
    size_t arrow = line.find(" => ");
    std::string_view path;
    if (arrow != std::string_view::npos) {
      so.name = std::string(Trim(line.substr(0, arrow)));
      path = BeforeAddress(line.substr(arrow + 4));
      if (path.starts_with("not found")) {
        return Status::NotFound(fmt::format("{} needs {}, which ldd cannot find", binary, so.name));
      }
    } else {
      path = BeforeAddress(line);
      if (!path.starts_with('/')) continue;  // linux-vdso.so.1: in the kernel
      so.loader = true;
      so.name = fs::path(path).filename().string();
    }
    if (path.empty()) continue;  // "statically linked" and the like
    std::error_code ec;
    so.path = fs::canonical(std::string(path), ec).string();
    if (ec) return Status::NotFound(fmt::format("{}: {}", path, ec.message()));
    objects.push_back(std::move(so));
  }
  return objects;
}

Result<PackageReport> BuildLambdaPackage(const PackageOptions& options) {
  if (options.zip_path.empty()) return Status::InvalidArgument("no zip path given");
  VIRGA_ASSIGN_OR_RETURN(std::string binary, SelfOrBinary(options.binary));
  TempFiles temps;
  std::string loader_name;
  VIRGA_ASSIGN_OR_RETURN(std::vector<PackagedFile> files,
                         PlanFiles(options, binary, &loader_name, &temps));
  const std::string bootstrap = BootstrapScript(loader_name);
  files[0].bytes = bootstrap.size();

  PackageReport report;
  for (const PackagedFile& f : files) report.unzipped_bytes += f.bytes;
  const std::string& tmp_zip = temps.Add(options.zip_path + ".tmp");
  VIRGA_RETURN_IF_ERROR(WriteZip(tmp_zip, files, bootstrap));
  std::error_code ec;
  report.zipped_bytes = fs::file_size(tmp_zip, ec);
  if (ec) return Status::IOError(fmt::format("{}: {}", tmp_zip, ec.message()));
  if (report.zipped_bytes > options.max_zipped_bytes ||
      report.unzipped_bytes > options.max_unzipped_bytes) {
    return Status::ResourceExhausted(fmt::format(
        "the Lambda package would be too large: {} zipped (limit {} for a direct upload), {} "
        "unzipped (limit {})",
        FormatMiB(report.zipped_bytes), FormatMiB(options.max_zipped_bytes),
        FormatMiB(report.unzipped_bytes), FormatMiB(options.max_unzipped_bytes)));
  }
  fs::rename(tmp_zip, options.zip_path, ec);
  if (ec) return Status::IOError(fmt::format("rename to {}: {}", options.zip_path, ec.message()));
  files[1].source = binary;  // not the stripped copy, gone with the temp files
  report.files = std::move(files);
  return report;
}

Status ExtractZip(const std::string& zip_path, const std::string& dir) {
  int err = 0;
  zip_t* z = zip_open(zip_path.c_str(), ZIP_RDONLY, &err);
  if (z == nullptr)
    return Status::IOError(fmt::format("{}: cannot open (libzip error {})", zip_path, err));
  std::unique_ptr<zip_t, void (*)(zip_t*)> closer(z, zip_discard);
  const zip_int64_t n = zip_get_num_entries(z, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t st;
    if (zip_stat_index(z, index, 0, &st) != 0) return ZipError(z, zip_path);
    const std::string name = st.name;
    if (name.empty() || name.front() == '/' || name.find("..") != std::string::npos) {
      return Status::InvalidArgument(
          fmt::format("{}: entry '{}' leaves the directory", zip_path, name));
    }
    zip_uint8_t opsys = 0;
    zip_uint32_t attributes = 0;
    zip_file_get_external_attributes(z, index, 0, &opsys, &attributes);
    const fs::path target = fs::path(dir) / name;
    std::error_code ec;
    if (name.back() == '/') {
      fs::create_directories(target, ec);
      continue;
    }
    fs::create_directories(target.parent_path(), ec);
    mode_t mode = opsys == ZIP_OPSYS_UNIX ? (attributes >> 16) & 07777 : 0644;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Errno(target.string());
    zip_file_t* f = zip_fopen_index(z, index, 0);
    if (f == nullptr) {
      ::close(fd);
      return ZipError(z, name);
    }
    char buf[65536];
    zip_int64_t got = 0;
    bool ok = true;
    while (ok && (got = zip_fread(f, buf, sizeof buf)) > 0) {
      ok = ::write(fd, buf, static_cast<size_t>(got)) == got;
    }
    ok = ok && got == 0;
    zip_fclose(f);
    ok = ::fchmod(fd, mode) == 0 && ok;
    ok = ::close(fd) == 0 && ok;
    if (!ok) return Status::IOError(fmt::format("extracting {} to {}", name, target.string()));
  }
  return Status::OK();
}

Status CheckPackage(const std::string& zip_path) {
  int err = 0;
  zip_t* z = zip_open(zip_path.c_str(), ZIP_RDONLY, &err);
  if (z == nullptr) {
    zip_error_t e;
    zip_error_init_with_code(&e, err);
    Status s = Status::InvalidArgument(zip_path + ": not a readable zip: " + zip_error_strerror(&e));
    zip_error_fini(&e);
    return s;
  }
  const zip_int64_t index = zip_name_locate(z, "bootstrap", 0);
  zip_uint8_t opsys = 0;
  zip_uint32_t attributes = 0;
  if (index >= 0) zip_file_get_external_attributes(z, static_cast<zip_uint64_t>(index), 0, &opsys, &attributes);
  zip_close(z);
  if (index < 0) {
    return Status::InvalidArgument(zip_path +
                                   ": no `bootstrap` at the zip's root (Lambda's provided runtimes "
                                   "start it; `virga deploy lambda --zip` builds a package)");
  }
  const uint32_t mode = opsys == ZIP_OPSYS_UNIX ? (attributes >> 16) & 0777 : 0;
  if ((mode & 0111) == 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return Status::InvalidArgument(zip_path + ": `bootstrap` is not executable in the zip (mode " +
                                   octal + ")");
  }
  return Status::OK();
}

}  // namespace virga::lambda
