// LambdaApi: the AWS Lambda REST calls virga makes, signed with SigV4
// (service "lambda"): Invoke (the backend's launches and its DryRun check),
// and CreateFunction / UpdateFunctionCode / GetFunction (`virga deploy
// lambda`). The endpoint, credentials and region come from aws::Settings
// (AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, the credential chain).
//
// Transport faults are Unavailable (the caller decides on retries); an
// answer with an error status is returned as it came (Invoke) or as a Status
// naming the call, the function, Lambda's error type and message and the
// endpoint (the others).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "aws/http.h"
#include "aws/settings.h"

namespace virga::aws {

struct LambdaFunctionConfig {
  std::string name;                        // function name
  std::string role;                        // execution role ARN
  std::string runtime = "provided.al2023";
  std::string architecture = "x86_64";
  std::string handler = "virga";           // unused by a custom runtime, required by the API
  uint32_t memory_mb = 1769;               // one full vCPU
  uint32_t timeout_s = 900;                // Lambda's maximum
  std::map<std::string, std::string> environment;
};

class LambdaApi {
 public:
  explicit LambdaApi(Settings settings);

  // POST /2015-03-31/functions/{function}/invocations[?Qualifier=Q] with
  // X-Amz-Invocation-Type `type` (Event, RequestResponse, DryRun). Any HTTP
  // status is OK here; *resp holds it.
  Status Invoke(std::string_view function, std::string_view qualifier, std::string_view type,
                std::string_view body, HttpResponse* resp);

  // The function's configuration JSON (GetFunction); NotFound if absent.
  Result<std::string> GetFunction(std::string_view name);
  // Creates the function from a zip; returns its ARN.
  Result<std::string> CreateFunction(const LambdaFunctionConfig& config, std::string_view zip);
  // Replaces the function's code; returns its ARN.
  Result<std::string> UpdateFunctionCode(std::string_view name, std::string_view zip);

  // "http://127.0.0.1:9001" or "https://lambda.<region>.amazonaws.com".
  std::string endpoint() const { return scheme_ + "://" + host_; }
  // "HTTP 404 ResourceNotFoundException: Function not found: ..." from an error answer.
  static std::string ErrorText(const HttpResponse& resp);

 private:
  Status Call(std::string_view method, std::string path,
              std::vector<std::pair<std::string, std::string>> query, Headers headers,
              std::string_view body, HttpResponse* resp);
  Status ErrorOf(std::string_view what, std::string_view name, const HttpResponse& resp) const;

  const Settings settings_;
  std::string scheme_, host_;
  HttpClient http_;
};

std::string Base64Encode(std::string_view data);

}  // namespace virga::aws
