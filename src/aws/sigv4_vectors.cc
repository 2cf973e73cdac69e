// aws_sigv4_vectors TABLE.json: signs every case of the table with SignV4 and
// prints a JSON array, one object per case: name, wire_path, wire_query,
// canonical_request, string_to_sign, authorization and the headers to send.
// sigv4_botocore_test.py compares the output with botocore's, field by field.
//
// The table (sigv4_vectors.json) holds "credentials" (named sets of test keys),
// "defaults" (region, date, credentials) and "cases"; a case has name, service,
// method, host, path (decoded), query and headers ([name, value] pairs), and
// either a "body" (signed by its SHA-256) or "unsigned_payload": true.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "aws/sigv4.h"

namespace {

using nlohmann::json;
using virga::aws::Credentials;

// "20240102T030405Z" -> time point; false if malformed.
bool ParseAmzDate(const std::string& s, std::chrono::system_clock::time_point* out) {
  std::tm tm{};
  char z = 0;
  if (s.size() != 16 ||
      std::sscanf(s.c_str(), "%4d%2d%2dT%2d%2d%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 ||
      z != 'Z') {
    return false;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::vector<std::pair<std::string, std::string>> Pairs(const json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& p : j) out.emplace_back(p.at(0).get<std::string>(), p.at(1).get<std::string>());
  return out;
}

json SignCase(const json& c, const json& table) {
  const json& defaults = table.at("defaults");
  const std::string name = c.at("name");
  const auto field = [&](const char* key) {
    return c.value(key, defaults.at(key).get<std::string>());
  };
  const json& keys = table.at("credentials").at(field("credentials"));
  const Credentials credentials{keys.at("access_key_id"), keys.at("secret_access_key"),
                                keys.value("session_token", "")};
  const virga::aws::SigningScope scope{field("region"), c.at("service")};
  std::chrono::system_clock::time_point when;
  if (!ParseAmzDate(field("date"), &when)) {
    throw std::runtime_error(name + ": bad date");
  }
  virga::aws::RequestToSign request;
  request.method = c.at("method");
  request.host = c.at("host");
  request.path = c.at("path");
  request.query = Pairs(c.value("query", json::array()));
  request.headers = Pairs(c.value("headers", json::array()));
  request.payload_hash = c.value("unsigned_payload", false)
                             ? std::string(virga::aws::kUnsignedPayload)
                             : virga::aws::Sha256Hex(c.value("body", ""));

  const virga::aws::SignedRequest signed_request = SignV4(request, credentials, scope, when);
  json headers = json::array();
  std::string authorization;
  for (const auto& [header, value] : signed_request.headers) {
    headers.push_back({header, value});
    if (header == "Authorization") authorization = value;
  }
  return {{"name", name},
          {"wire_path", signed_request.wire_path},
          {"wire_query", signed_request.wire_query},
          {"canonical_request", signed_request.canonical_request},
          {"string_to_sign", signed_request.string_to_sign},
          {"authorization", authorization},
          {"headers", headers}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: aws_sigv4_vectors TABLE.json\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << argv[1] << ": cannot open\n";
    return 2;
  }
  try {
    const json table = json::parse(in);
    json out = json::array();
    for (const json& c : table.at("cases")) out.push_back(SignCase(c, table));
    std::cout << out.dump(1) << "\n";
  } catch (const std::exception& e) {
    std::cerr << argv[1] << ": " << e.what() << "\n";
    return 2;
  }
  return 0;
}
