// The AWS Lambda deployment package of virga (`virga deploy lambda --zip`;
// docs/lambda.md): a zip for the provided.al2023 runtime (x86_64) that holds
//   bootstrap                     0755, a /bin/sh script: execs lib/<loader> --library-path lib
//                                 virga lambda-runtime
//   virga                         0755, the binary (debug sections stripped by default)
//   lib/<loader>                  0755, this machine's dynamic loader (ld-linux-x86-64.so.2)
//   lib/<soname>...               0644, every shared object the binary needs, resolved here
//   certs/ca-certificates.crt     0644, the CA bundle (AWS_CA_BUNDLE unless already set)
// so the function runs on this machine's glibc and libraries, never on the
// host's (Amazon Linux 2023 has an older glibc than Debian 12).
//
// Thread safety: BuildLambdaPackage runs child processes (ldd, strip) and
// writes files; call it from one thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "virga/status.h"

namespace virga::lambda {

struct PackageOptions {
  // The zip to write (replaced atomically: written beside it, then renamed). Required.
  std::string zip_path;
  // The virga executable to ship; "": this process's own (/proc/self/exe).
  std::string binary;
  // Ship the binary without its debug sections (`strip --strip-debug`, binutils):
  // they are most of a RelWithDebInfo build.
  bool strip_debug = true;
  // Shipped as certs/ca-certificates.crt for https (S3); "": none.
  std::string ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  // Lambda's limits: 50 MiB zipped for a direct upload, 250 MiB unzipped.
  uint64_t max_zipped_bytes = uint64_t{50} << 20;
  uint64_t max_unzipped_bytes = uint64_t{250} << 20;
};

struct PackagedFile {
  std::string name;    // path in the zip: "bootstrap", "lib/libc.so.6"
  std::string source;  // where it came from; "" for generated text
  uint64_t bytes = 0;
  uint32_t mode = 0;  // permission bits stored in the zip (0755, 0644)
};

struct PackageReport {
  std::vector<PackagedFile> files;  // in zip order
  uint64_t unzipped_bytes = 0;
  uint64_t zipped_bytes = 0;
};

// Builds the package. Errors: the binary missing or not dynamically linked,
// a library ldd cannot resolve, strip or the zip failing (IOError), and a
// package over either limit (ResourceExhausted naming both sizes and limits;
// no zip is left then).
Result<PackageReport> BuildLambdaPackage(const PackageOptions& options);

// A shared object the binary loads, as resolved on this machine.
struct SharedObject {
  std::string name;  // the name the binary asks for ("libc.so.6"); for the loader, its file name
  std::string path;  // the file it resolves to, symlinks followed
  bool loader = false;
};
// What `ldd binary` resolves (linux-vdso left out); the loader is among them.
Result<std::vector<SharedObject>> ResolveSharedObjects(const std::string& binary);

// The bootstrap script for a package whose loader is lib/<loader_name>.
std::string BootstrapScript(const std::string& loader_name);

// Unpacks `zip_path` into the existing directory `dir`, keeping the stored
// permission bits (tests and `virga bench lambda-runtime`). InvalidArgument
// for an entry whose name leaves `dir`.
Status ExtractZip(const std::string& zip_path, const std::string& dir);

// Checks that `zip_path` is a package Lambda's provided runtimes can start:
// an executable `bootstrap` at its root. InvalidArgument naming the file and
// what is missing.
Status CheckPackage(const std::string& zip_path);

}  // namespace virga::lambda
