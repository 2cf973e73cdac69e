#include "dashboard/auth.h"

namespace virga::dash {

bool TokenEquals(std::string_view want, std::string_view got) {
  unsigned char diff = want.size() == got.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i] ^ (i < got.size() ? got[i] : 0));
  }
  return diff == 0;
}

std::string CookieName(uint16_t port) { return "virga_token_" + std::to_string(port); }

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t end = header.find(';');
    std::string_view item = header.substr(0, end);
    header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) {
      return std::string(item.substr(eq + 1));
    }
  }
  return {};
}

std::string BearerToken(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.substr(0, kPrefix.size()) != kPrefix) return {};
  return std::string(authorization.substr(kPrefix.size()));
}

AuthVia Authenticate(std::string_view token, uint16_t port, const Credentials& c) {
  if (token.empty()) return AuthVia::kNone;
  const std::string bearer = BearerToken(c.authorization);
  if (!c.authorization.empty() && bearer.empty()) return AuthVia::kNone;  // not a bearer token
  // Explicit tokens first, each of them must match; the cookie counts only
  // without them (so a stale cookie of an earlier dashboard on this port does
  // not defeat a freshly printed URL).
  AuthVia via = AuthVia::kNone;
  for (const auto& [got, how] : {std::pair{std::string_view(bearer), AuthVia::kHeader},
                                 std::pair{std::string_view(c.x_token), AuthVia::kHeader},
                                 std::pair{std::string_view(c.query_token), AuthVia::kQuery}}) {
    if (got.empty()) continue;
    if (!TokenEquals(token, got)) return AuthVia::kNone;
    if (via == AuthVia::kNone) via = how;
  }
  if (via != AuthVia::kNone) return via;
  const std::string cookie = CookieValue(c.cookie, CookieName(port));
  return !cookie.empty() && TokenEquals(token, cookie) ? AuthVia::kCookie : AuthVia::kNone;
}

bool SameOrigin(std::string_view origin, std::string_view host) {
  if (origin.empty()) return true;
  return !host.empty() && origin == "http://" + std::string(host);
}

}  // namespace virga::dash
