// The shared secret of servers and clients: --token-file F, else
// $VIRGA_TOKEN, else ~/.virga/token (created with a random token, mode 0600,
// when a server starts without one, so the embedded default needs no setup).
#pragma once

#include <string>

#include "virga/status.h"

namespace virga::cli {

std::string DefaultTokenPath();
// Reads the token (from file_flag if non-empty). When `create` and no token
// exists anywhere, writes a new random one to DefaultTokenPath().
Result<std::string> LoadToken(const std::string& file_flag, bool create);

}  // namespace virga::cli
