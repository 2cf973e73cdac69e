#include "scheduler/server_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "backend/function_files.h"
#include "backend/spawn.h"
#include "virga/ps_client.h"

namespace virga::sched {
namespace {

// A port free now on `bind` (the kernel's pick); the server binds it with
// SO_REUSEADDR moments later.
Result<uint16_t> FreePort(const std::string& bind) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  if (::inet_pton(AF_INET, bind.c_str(), &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Status s = Status::IOError(std::string("bind: ") + std::strerror(errno));
    ::close(fd);
    return s;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

ServerProcess::~ServerProcess() {
  Stop();
  if (spawner_.joinable()) {
    {
      std::lock_guard<std::mutex> l(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    spawner_.join();
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 200 && Alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

bool ServerProcess::Alive() {
  if (pid_ <= 0) return false;
  int status;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  pid_ = -1;  // ended (reaped now), or not our child any more
  return false;
}

std::string ServerProcess::ErrorTail() const {
  if (dir_.empty()) return "";
  return backend::ReadFunctionOutput(dir_ + "/out", dir_ + "/err").error_tail;
}

Status ServerProcess::Start(bool restore) {
  if (Alive()) return Status::Internal("server process: already running");
  if (dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/virga-server-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return Status::IOError("mkdtemp " + tmpl + ": " + std::strerror(errno));
    dir_ = tmpl;
    VIRGA_RETURN_IF_ERROR(backend::WriteFile(dir_ + "/token", o_.token));  // 0600
  }
  if (port_ == 0) {
    VIRGA_ASSIGN_OR_RETURN(port_, FreePort(o_.bind));
  }
  backend::SpawnSpec spec;
  spec.binary = o_.binary;
  spec.argv = {o_.binary,     "server",        "--port",
               std::to_string(port_), "--bind", o_.bind,
               "--token-file", dir_ + "/token", "--threads",
               "1",            "--spin-us",     "0",
               "--checkpoint", o_.checkpoint_uri, "--checkpoint-every",
               std::to_string(o_.checkpoint_every.count() / 1000.0), "--name", o_.name};
  // A restore must find the checkpoint: a server that came back empty would
  // lose the job (its table, queue and counts); one that exits is retried.
  if (!o_.tls_cert_file.empty())  // paths only: the key stays in its file
    spec.argv.insert(spec.argv.end(), {"--tls-cert", o_.tls_cert_file, "--tls-key", o_.tls_key_file});
  if (restore) spec.argv.insert(spec.argv.end(), {"--restore", "--restore-required"});
  spec.env = backend::EnvironmentWith({});
  spec.stdout_path = dir_ + "/out";
  spec.stderr_path = dir_ + "/err";
  spec.parent_death_signal = SIGKILL;  // never outlives the driver
  VIRGA_ASSIGN_OR_RETURN(pid_, SpawnOnOwnThread(spec));
  ++starts_;
  return WaitReady();
}

void ServerProcess::SpawnerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return quit_ || request_ != nullptr; });
    if (quit_) return;
    reply_ = backend::SpawnProcess(*request_);
    request_ = nullptr;
    cv_.notify_all();
  }
}

Result<pid_t> ServerProcess::SpawnOnOwnThread(const backend::SpawnSpec& spec) {
  if (!spawner_.joinable()) spawner_ = std::thread([this] { SpawnerLoop(); });
  std::unique_lock<std::mutex> l(mu_);
  request_ = &spec;
  reply_.reset();
  cv_.notify_all();
  cv_.wait(l, [&] { return reply_.has_value(); });
  return std::move(*reply_);
}

Status ServerProcess::WaitReady() {
  PsClientOptions co;
  co.servers = {address()};
  co.token = o_.token;
  co.tls_ca_pem = o_.tls_ca_pem;
  co.connect_attempts = 1;
  co.connect_timeout = std::chrono::milliseconds(500);
  co.call_timeout = std::chrono::milliseconds(2000);
  const auto deadline = std::chrono::steady_clock::now() + o_.ready_timeout;
  auto backoff = std::chrono::milliseconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive()) {
      return Status::Unavailable("parameter server process exited at start: " +
                                 ErrorTail());
    }
    auto c = PsClient::Connect(co);
    if (c.ok() && (*c)->ServerStats(0).ok()) return Status::OK();
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
  return Status::DeadlineExceeded("parameter server process did not answer within " +
                                  std::to_string(o_.ready_timeout.count()) + " ms: " + ErrorTail());
}

}  // namespace virga::sched
