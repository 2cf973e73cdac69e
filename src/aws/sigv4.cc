#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cassert>
#include <ctime>

namespace virga::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string Hex(const unsigned char* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  std::string out(reinterpret_cast<const char*>(mac), len);
  OPENSSL_cleanse(mac, sizeof(mac));
  return out;
}

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// botocore's _header_value: ' '.join(value.split()).
std::string TrimAll(std::string_view v) {
  std::string out;
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && IsSpace(v[i])) ++i;
    size_t start = i;
    while (i < v.size() && !IsSpace(v[i])) ++i;
    if (i > start) {
      if (!out.empty()) out += ' ';
      out.append(v.substr(start, i - start));
    }
  }
  return out;
}

// botocore.utils.remove_dot_segments: RFC 3986 5.2.4 plus dropping empty
// segments (AWS services collapse "//").
std::string RemoveDotSegments(std::string_view path) {
  if (path.empty()) return "/";
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    start = end + 1;
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) result += '/';
    result.append(out[i]);
  }
  if (path.back() == '/' && !out.empty()) result += '/';
  return result;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

bool SignerOwned(std::string_view lower_name) {
  return lower_name == "host" || lower_name == "authorization" || lower_name == "x-amz-date" ||
         lower_name == "x-amz-content-sha256" || lower_name == "x-amz-security-token";
}

bool NeverSigned(std::string_view lower_name) {
  return lower_name == "expect" || lower_name == "user-agent" || lower_name == "x-amzn-trace-id";
}

struct CanonicalHeaders {
  std::string block;         // "name:value\n" per header, sorted by name
  std::string signed_names;  // "host;range;x-amz-date"
};

// `headers` hold lower-case names; repeated names keep their order of arrival.
CanonicalHeaders Canonicalize(std::vector<std::pair<std::string, std::string>> headers) {
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  CanonicalHeaders out;
  for (size_t i = 0; i < headers.size(); ++i) {
    const bool same_as_previous = i > 0 && headers[i].first == headers[i - 1].first;
    if (same_as_previous) {
      out.block.back() = ',';  // replaces the previous value's '\n'
    } else {
      if (!out.signed_names.empty()) out.signed_names += ';';
      out.signed_names += headers[i].first;
      out.block += headers[i].first;
      out.block += ':';
    }
    out.block += TrimAll(headers[i].second);
    out.block += '\n';
  }
  return out;
}

std::string Signature(const std::string& secret, std::string_view date, const SigningScope& scope,
                      std::string_view string_to_sign) {
  std::string key = "AWS4" + secret;
  std::string k_date = HmacSha256(key, date);
  std::string k_region = HmacSha256(k_date, scope.region);
  std::string k_service = HmacSha256(k_region, scope.service);
  std::string k_signing = HmacSha256(k_service, "aws4_request");
  std::string mac = HmacSha256(k_signing, string_to_sign);
  for (std::string* s : {&key, &k_date, &k_region, &k_service, &k_signing}) Wipe(s);
  return Hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, len);
}

std::string UriEncode(std::string_view s, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (c == '/' && !encode_slash)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SignedRequest SignV4(const RequestToSign& request, const Credentials& credentials,
                     const SigningScope& scope, std::chrono::system_clock::time_point when) {
  assert(!credentials.empty() && !scope.region.empty() && !scope.service.empty());
  const bool s3 = scope.service == "s3";
  const std::string amz_date = AmzDate(when);
  const std::string date = amz_date.substr(0, 8);

  SignedRequest out;
  out.wire_path = UriEncode(request.path.empty() ? "/" : request.path, false);
  out.wire_query = CanonicalQuery(request.query);
  const std::string canonical_path =
      s3 ? out.wire_path : UriEncode(RemoveDotSegments(out.wire_path), false);

  const bool send_payload_hash = s3 || request.payload_hash == kUnsignedPayload;
  std::vector<std::pair<std::string, std::string>> to_sign;
  to_sign.reserve(request.headers.size() + 4);
  for (const auto& [name, value] : request.headers) {
    std::string lower = Lower(name);
    if (SignerOwned(lower) || NeverSigned(lower)) continue;
    to_sign.emplace_back(std::move(lower), value);
  }
  to_sign.emplace_back("host", request.host);
  to_sign.emplace_back("x-amz-date", amz_date);
  if (send_payload_hash) to_sign.emplace_back("x-amz-content-sha256", request.payload_hash);
  if (!credentials.session_token.empty()) {
    to_sign.emplace_back("x-amz-security-token", credentials.session_token);
  }
  const CanonicalHeaders canonical = Canonicalize(std::move(to_sign));

  out.canonical_request = Upper(request.method) + '\n' + canonical_path + '\n' + out.wire_query +
                          '\n' + canonical.block + '\n' + canonical.signed_names + '\n' +
                          request.payload_hash;
  const std::string credential_scope =
      date + '/' + scope.region + '/' + scope.service + "/aws4_request";
  out.string_to_sign = std::string(kAlgorithm) + '\n' + amz_date + '\n' + credential_scope + '\n' +
                       Sha256Hex(out.canonical_request);

  const std::string signature =
      Signature(credentials.secret_access_key, date, scope, out.string_to_sign);
  out.headers.emplace_back(
      "Authorization", std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + '/' +
                           credential_scope + ", SignedHeaders=" + canonical.signed_names +
                           ", Signature=" + signature);
  out.headers.emplace_back("X-Amz-Date", amz_date);
  if (send_payload_hash) out.headers.emplace_back("X-Amz-Content-Sha256", request.payload_hash);
  if (!credentials.session_token.empty()) {
    out.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  return out;
}

}  // namespace virga::aws
