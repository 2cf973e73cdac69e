// The AWS settings users already have: credentials, region and endpoint from
// the AWS_* environment variables and the shared files ~/.aws/credentials and
// ~/.aws/config, resolved in the order the AWS CLI and SDKs use.
//
// Credentials never appear in a returned message or in `credentials_source`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "virga/status.h"

namespace virga::aws {

// Environment lookup, injectable for tests; the default reads ::getenv. A
// variable set to "" counts as unset.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnv();

struct Settings {
  Credentials credentials;
  std::string region;  // resolved; never empty ("us-east-1" when nothing says otherwise)
  // "http://127.0.0.1:4568" from an override (no trailing '/'), or "" (then the AWS
  // endpoint, DefaultEndpoint(service, region), is used by the caller).
  std::string endpoint;
  std::string profile;  // the profile consulted ("default" unless AWS_PROFILE)
  // Where the credentials came from, for messages: "environment",
  // "profile default in /root/.aws/credentials", ... (never the values).
  std::string credentials_source;
  // PEM file of the certificate authorities trusted for https endpoints (a private
  // S3-compatible store's own CA); "": the system's.
  std::string ca_bundle;
};

// Resolves the settings of `service` ("s3", "lambda"):
//  - credentials: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//    else aws_access_key_id + aws_secret_access_key (+ aws_session_token) of profile
//    AWS_PROFILE (default "default") in AWS_SHARED_CREDENTIALS_FILE (default
//    $HOME/.aws/credentials, section "[NAME]"), then in AWS_CONFIG_FILE (default
//    $HOME/.aws/config, section "[profile NAME]", or "[default]" for default).
//    A leading "~/" in either variable means $HOME. An absent file is skipped.
//  - region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the config
//    file, else "us-east-1".
//  - endpoint: AWS_ENDPOINT_URL_<SERVICE> (upper-cased, '-' and ' ' as '_':
//    AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_LAMBDA), AWS_ENDPOINT_URL, the profile's
//    `endpoint_url` in the config file, else "". It must start with http:// or https://.
//  - ca_bundle: AWS_CA_BUNDLE, the profile's `ca_bundle` in the config file, else "".
// Errors (messages name variables, files and the profile, never a value that could
// be a secret):
//  - Unauthenticated: no credentials anywhere (says where it looked);
//  - InvalidArgument: only one of the key id and secret set in a source; a malformed
//    INI line ("PATH:LINE: ..."); an AWS_PROFILE in neither file; a bad endpoint URL;
//  - IOError: a shared file exists but cannot be read.
Result<Settings> ResolveSettings(std::string_view service, const EnvLookup& env = ProcessEnv());

// The default AWS endpoint of a service in a region: "https://s3.us-east-1.amazonaws.com",
// "https://lambda.eu-west-1.amazonaws.com" ("amazonaws.com.cn" in the cn-* regions).
std::string DefaultEndpoint(std::string_view service, std::string_view region);

}  // namespace virga::aws
