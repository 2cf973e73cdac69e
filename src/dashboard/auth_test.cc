#include "dashboard/auth.h"

#include <gtest/gtest.h>

namespace virga::dash {
namespace {

TEST(DashboardAuth, TokenEquals) {
  EXPECT_TRUE(TokenEquals("abc", "abc"));
  EXPECT_FALSE(TokenEquals("abc", "abd"));
  EXPECT_FALSE(TokenEquals("abc", "ab"));
  EXPECT_FALSE(TokenEquals("abc", "abcd"));
  EXPECT_FALSE(TokenEquals("abc", ""));
}

TEST(DashboardAuth, Cookies) {
  EXPECT_EQ(CookieName(8080), "virga_token_8080");
  EXPECT_EQ(CookieValue("a=1; virga_token_80=xyz; b=2", "virga_token_80"), "xyz");
  EXPECT_EQ(CookieValue("virga_token_80=xyz", "virga_token_80"), "xyz");
  EXPECT_EQ(CookieValue("virga_token_8080=xyz", "virga_token_80"), "");
  EXPECT_EQ(CookieValue("", "virga_token_80"), "");
  EXPECT_EQ(BearerToken("Bearer t0k"), "t0k");
  EXPECT_EQ(BearerToken("Basic t0k"), "");
}

TEST(DashboardAuth, Authenticate) {
  const std::string t = "0123456789abcdef";
  Credentials c;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kNone);
  c.query_token = t;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kQuery);
  c.query_token = "wrong";
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kNone);
  c = {};
  c.authorization = "Bearer " + t;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kHeader);
  c.x_token = "wrong";  // every explicit token must match
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kNone);
  c = {};
  c.authorization = "Basic " + t;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kNone);
  c = {};
  c.x_token = t;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kHeader);
  c = {};
  c.cookie = "virga_token_80=" + t;
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kCookie);
  EXPECT_EQ(Authenticate(t, 81, c), AuthVia::kNone);  // another port's cookie
  c.cookie = "virga_token_80=stale";
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kNone);
  c.query_token = t;  // a fresh URL wins over a stale cookie
  EXPECT_EQ(Authenticate(t, 80, c), AuthVia::kQuery);
  EXPECT_EQ(Authenticate("", 80, c), AuthVia::kNone);  // no token configured: nobody gets in
}

TEST(DashboardAuth, SameOrigin) {
  EXPECT_TRUE(SameOrigin("", "127.0.0.1:80"));
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:80", "127.0.0.1:80"));
  EXPECT_FALSE(SameOrigin("http://evil.example", "127.0.0.1:80"));
  EXPECT_FALSE(SameOrigin("null", "127.0.0.1:80"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:80", ""));
}

}  // namespace
}  // namespace virga::dash
