#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

namespace virga::net::internal {

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

Result<std::unique_ptr<asio::ssl::context>> ServerTlsContext(const std::string& cert_file,
                                                             const std::string& key_file) {
  if (cert_file.empty() || key_file.empty())
    return Status::InvalidArgument("TLS needs both a certificate (--tls-cert) and a key (--tls-key)");
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  asio::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec)
    return Status::InvalidArgument(
        fmt::format("TLS certificate {}: {}", cert_file, ec.message()));
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument(fmt::format("TLS key {}: {}", key_file, ec.message()));
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Status::InvalidArgument(fmt::format("TLS key {} does not match the certificate {}",
                                               key_file, cert_file));
  return ctx;
}

Result<std::unique_ptr<asio::ssl::context>> ClientTlsContext(std::string_view ca_pem) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1);
  asio::error_code ec;
  ctx->add_certificate_authority(asio::buffer(ca_pem.data(), ca_pem.size()), ec);
  if (ec) return Status::InvalidArgument("TLS CA certificate(s): " + ec.message());
  ctx->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return Status::InvalidArgument("TLS verify mode: " + ec.message());
  return ctx;
}

Result<SSL*> NewClientSession(asio::ssl::context& ctx, int fd, const std::string& host) {
  SSL* ssl = SSL_new(ctx.native_handle());
  if (ssl == nullptr) return Status::Internal("SSL_new: " + OpenSslErrors());
  unsigned char ip[16];
  const bool is_ip = ::inet_pton(AF_INET, host.c_str(), ip) == 1 ||
                     ::inet_pton(AF_INET6, host.c_str(), ip) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  const bool named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1
                           : SSL_set1_host(ssl, host.c_str()) == 1 &&
                                 SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
  if (!named || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return Status::Internal(fmt::format("TLS setup for {}: {}", host, OpenSslErrors()));
  }
  SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ssl;
}

}  // namespace virga::net::internal
