// S3TestServer: a real S3 implementation for tests, npm @20minutes/s3rver
// (it checks SigV4 signatures), started on 127.0.0.1 on a free port with its
// own data directory and stopped (SIGTERM, then SIGKILL) on destruction.
//
// The launcher script comes from $VIRGA_S3RVER, else from the build tree's
// copy beside its node_modules (compiled in as VIRGA_S3RVER_DEFAULT). Without it, Start() returns
// Unavailable with a message saying so; tests then GTEST_SKIP loudly.
//
// UseInProcessEnv() points this process's AWS settings at the server
// (AWS_ENDPOINT_URL_S3, the S3RVER/S3RVER key pair, region us-east-1), so
// `ObjectStore::Open("s3://<bucket>")` reaches it.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "virga/status.h"

namespace virga::testing {

// Deterministic bytes, different for each seed, with NULs and high bytes.
inline std::string Payload(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// Starts `args` (args[0] found on PATH) as a child that dies with this
// process, and reads the "PORT <n>" line it prints first on stdout.
inline Status StartPortProcess(std::vector<std::string> args, pid_t* pid, int* port) {
  int out[2];
  if (::pipe(out) != 0) return Status::IOError("pipe failed");
  *pid = ::fork();
  if (*pid < 0) return Status::IOError("fork failed");
  if (*pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that dies takes its helper along
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::perror(argv[0]);
    ::_exit(127);
  }
  ::close(out[1]);
  FILE* f = ::fdopen(out[0], "r");
  char line[128] = {0};
  const bool got = f != nullptr && std::fgets(line, sizeof(line), f) != nullptr;
  if (f != nullptr) std::fclose(f);
  if (!got || std::sscanf(line, "PORT %d", port) != 1) {
    return Status::Unavailable(args[0] + " " + (args.size() > 1 ? args[1] : "") +
                               " did not start (output: \"" + std::string(line) + "\")");
  }
  return Status::OK();
}

class S3TestServer {
 public:
  S3TestServer() = default;
  ~S3TestServer() { Stop(); }
  S3TestServer(const S3TestServer&) = delete;
  S3TestServer& operator=(const S3TestServer&) = delete;

  // Starts the server with `buckets` created. Blocks until it listens. With
  // `tls_key` and `tls_cert` (PEM files) it serves https.
  Status Start(const std::vector<std::string>& buckets, const std::string& tls_key = "",
               const std::string& tls_cert = "") {
    const char* script = std::getenv("VIRGA_S3RVER");
#ifdef VIRGA_S3RVER_DEFAULT
    if (script == nullptr || *script == '\0') script = VIRGA_S3RVER_DEFAULT;
#endif
    if (script == nullptr || *script == '\0' || ::access(script, R_OK) != 0) {
      return Status::Unavailable(
          "VIRGA_S3RVER is not set to the s3rver launcher (ctest sets it; build target "
          "`s3rver` installs it): the s3:// tests cannot run");
    }
    char tmpl[] = "/tmp/virga_s3rver.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return Status::IOError("mkdtemp failed");
    dir_ = tmpl;
    // s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
    std::vector<std::string> args = {"node", "--openssl-legacy-provider", script, "--dir", dir_};
    for (const auto& b : buckets) {
      args.push_back("--bucket");
      args.push_back(b);
    }
    if (!tls_key.empty()) {
      args.insert(args.end(), {"--tls-key", tls_key, "--tls-cert", tls_cert});
      tls_ = true;
    }
    Status s = StartPortProcess(std::move(args), &pid_, &port_);
    if (!s.ok()) Stop();
    return s;
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = 0;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = 0;
      }
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      dir_.clear();
    }
  }

  int port() const { return port_; }
  std::string endpoint() const {
    return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
  }

  void UseInProcessEnv() const {
    ::setenv("AWS_ENDPOINT_URL_S3", endpoint().c_str(), 1);
    ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    ::setenv("AWS_REGION", "us-east-1", 1);
    ::unsetenv("AWS_SESSION_TOKEN");
    ::unsetenv("AWS_PROFILE");
  }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
  bool tls_ = false;
  std::string dir_;
};

}  // namespace virga::testing
