#include "tools/token.h"

#include "common/atomic_file.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace virga::cli {

std::string DefaultTokenPath() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.virga/token";
}

static Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read token file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.empty()) return Status::InvalidArgument("token file " + path + " is empty");
  return t;
}

Result<std::string> LoadToken(const std::string& file_flag, bool create) {
  if (!file_flag.empty()) return ReadTokenFile(file_flag);
  if (const char* env = std::getenv("VIRGA_TOKEN"); env && *env) return std::string(env);
  const std::string path = DefaultTokenPath();
  auto existing = ReadTokenFile(path);
  if (existing.ok() || !create) {
    if (!existing.ok())
      return Status::NotFound("no token: pass --token-file, set VIRGA_TOKEN, or start a server "
                              "first (it writes " + path + ")");
    return existing;
  }
  std::random_device rd;
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (int i = 0; i < 32; ++i) token += kHex[rd() & 15];
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // Owner-only from its creation; never replaced, so racing servers agree on one token.
  Status s = WriteFileAtomically(path, token + "\n", {.mode = 0600, .replace = false});
  if (s.code() == Status::Code::kAlreadyExists) return ReadTokenFile(path);  // another won
  if (!s.ok()) return s.WithContext("token file");
  return token;
}

}  // namespace virga::cli
