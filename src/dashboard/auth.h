// Token checks of the dashboard (include/virga/dashboard.h, "Security"),
// independent of the HTTP library so they are tested alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace virga::dash {

// Equal strings, compared in time independent of where they differ.
bool TokenEquals(std::string_view want, std::string_view got);

// The cookie that keeps the token: named after the port, since browsers share
// cookies between ports of one host (two dashboards must not clobber each other's).
std::string CookieName(uint16_t port);
// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(std::string_view cookie_header, std::string_view name);
// "Bearer T" -> "T"; anything else -> "".
std::string BearerToken(std::string_view authorization);

// Where a request carries its token.
struct Credentials {
  std::string authorization;  // Authorization header
  std::string x_token;        // X-Virga-Token header
  std::string cookie;         // Cookie header
  std::string query_token;    // ?token=
};
enum class AuthVia { kNone, kHeader, kCookie, kQuery };
// How the request proved it knows `token` (kNone: it did not). Explicit
// tokens (headers, query) must all match; the cookie is read only without them.
AuthVia Authenticate(std::string_view token, uint16_t port, const Credentials& c);

// True when a POST may proceed: no Origin header (not a browser), or an
// Origin equal to http://<Host>.
bool SameOrigin(std::string_view origin, std::string_view host);

}  // namespace virga::dash
