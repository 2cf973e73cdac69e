#include "aws/lambda_api.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "aws/sigv4.h"

namespace virga::aws {
namespace {

using json = nlohmann::json;

HttpOptions ApiHttpOptions(const Settings& s) {
  HttpOptions h;
  h.request_timeout = std::chrono::seconds(120);  // a 50 MB upload included
  h.max_response_bytes = 8 << 20;
  h.ca_bundle = s.ca_bundle;
  return h;
}

}  // namespace

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

LambdaApi::LambdaApi(Settings settings)
    : settings_(std::move(settings)), http_(ApiHttpOptions(settings_)) {
  const std::string endpoint = settings_.endpoint.empty()
                                   ? DefaultEndpoint("lambda", settings_.region)
                                   : settings_.endpoint;
  // ResolveSettings has checked an override's form; a bad one fails each call by its URL.
  if (!SplitEndpoint(endpoint, &scheme_, &host_).ok()) scheme_ = "https", host_ = endpoint;
}

std::string LambdaApi::ErrorText(const HttpResponse& resp) {
  std::string type(resp.Header("x-amzn-errortype"));
  if (size_t colon = type.find(':'); colon != std::string::npos) type.resize(colon);
  std::string message;
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_object()) {
    for (const char* k : {"message", "Message", "errorMessage"}) {
      if (j.contains(k) && j[k].is_string()) message = j[k].get<std::string>();
    }
    if (type.empty() && j.contains("Type") && j["Type"].is_string() && j["Type"] != "User") {
      type = j["Type"].get<std::string>();
    }
  }
  std::string out = "HTTP " + std::to_string(resp.status);
  if (!type.empty()) out += " " + type;
  if (!message.empty()) out += ": " + message.substr(0, 300);
  if (resp.status == 403) out += " (check the AWS credentials and region)";
  return out;
}

Status LambdaApi::Call(std::string_view method, std::string path,
                       std::vector<std::pair<std::string, std::string>> query, Headers headers,
                       std::string_view body, HttpResponse* resp) {
  RequestToSign r;
  r.method = std::string(method);
  r.host = host_;
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = std::move(headers);
  r.payload_hash = Sha256Hex(body);
  return http_.Perform(
      SignedHttpRequest(scheme_, r, settings_.credentials, {settings_.region, "lambda"}, body), resp);
}

Status LambdaApi::ErrorOf(std::string_view what, std::string_view name,
                          const HttpResponse& resp) const {
  std::string m = std::string(what) + " of Lambda function '" + std::string(name) + "' at " +
                  endpoint() + ": " + ErrorText(resp);
  if (resp.status == 404) return Status::NotFound(std::move(m));
  if (resp.status == 403) return Status::Unauthenticated(std::move(m));
  if (resp.status == 429 || resp.status >= 500) return Status::Unavailable(std::move(m));
  return Status::InvalidArgument(std::move(m));
}

Status LambdaApi::Invoke(std::string_view function, std::string_view qualifier,
                         std::string_view type, std::string_view body, HttpResponse* resp) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!qualifier.empty()) query.emplace_back("Qualifier", std::string(qualifier));
  return Call("POST", "/2015-03-31/functions/" + std::string(function) + "/invocations",
              std::move(query),
              {{"X-Amz-Invocation-Type", std::string(type)}, {"Content-Type", "application/json"}},
              body, resp);
}

Result<std::string> LambdaApi::GetFunction(std::string_view name) {
  HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Call("GET", "/2015-03-31/functions/" + std::string(name), {}, {}, "", &resp));
  if (resp.status != 200) return ErrorOf("GetFunction", name, resp);
  return resp.body;
}

Result<std::string> LambdaApi::CreateFunction(const LambdaFunctionConfig& c, std::string_view zip) {
  json body = {{"FunctionName", c.name},
               {"Runtime", c.runtime},
               {"Role", c.role},
               {"Handler", c.handler},
               {"Architectures", {c.architecture}},
               {"MemorySize", c.memory_mb},
               {"Timeout", c.timeout_s},
               {"PackageType", "Zip"},
               {"Code", {{"ZipFile", Base64Encode(zip)}}}};
  if (!c.environment.empty()) body["Environment"] = {{"Variables", c.environment}};
  const std::string text = body.dump();
  HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Call("POST", "/2015-03-31/functions", {},
                             {{"Content-Type", "application/json"}}, text, &resp));
  if (resp.status != 201 && resp.status != 200) return ErrorOf("CreateFunction", c.name, resp);
  json j = json::parse(resp.body, nullptr, false);
  return j.is_object() && j.contains("FunctionArn") ? j["FunctionArn"].get<std::string>() : "";
}

Result<std::string> LambdaApi::UpdateFunctionCode(std::string_view name, std::string_view zip) {
  const std::string text = json{{"ZipFile", Base64Encode(zip)}}.dump();
  HttpResponse resp;
  VIRGA_RETURN_IF_ERROR(Call("PUT", "/2015-03-31/functions/" + std::string(name) + "/code", {},
                             {{"Content-Type", "application/json"}}, text, &resp));
  if (resp.status != 200) return ErrorOf("UpdateFunctionCode", name, resp);
  json j = json::parse(resp.body, nullptr, false);
  return j.is_object() && j.contains("FunctionArn") ? j["FunctionArn"].get<std::string>() : "";
}

}  // namespace virga::aws
