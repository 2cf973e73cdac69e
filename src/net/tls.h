// Internal to virga_net: TLS contexts (OpenSSL through Asio's ssl::context)
// and the client's blocking TLS session over a connected socket.
#pragma once

#include <openssl/ssl.h>

#include <asio/ssl.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga::net::internal {

// A server context: TLS 1.2 or later, the certificate chain and private key
// of the PEM files. InvalidArgument naming the file and OpenSSL's reason.
Result<std::unique_ptr<asio::ssl::context>> ServerTlsContext(const std::string& cert_file,
                                                             const std::string& key_file);

// A client context that trusts only the CA certificate(s) of `ca_pem`
// (PEM text) and verifies the peer.
Result<std::unique_ptr<asio::ssl::context>> ClientTlsContext(std::string_view ca_pem);

// The newest OpenSSL errors of this thread, "; "-joined (and cleared).
std::string OpenSslErrors();

// An SSL session for a connected socket `fd` to `host` (a DNS name or an IP
// address), checked against it: SNI and hostname verification for a name,
// IP verification for an address.
Result<SSL*> NewClientSession(asio::ssl::context& ctx, int fd, const std::string& host);

}  // namespace virga::net::internal
