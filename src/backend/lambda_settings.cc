// The lambda backend's entry in the backend registry: its settings and how
// they fill LambdaBackendOptions (src/backend/lambda_backend.h). Endpoint,
// credentials and region follow the AWS conventions (src/aws/settings.h,
// service "lambda": AWS_ENDPOINT_URL_LAMBDA, AWS_ENDPOINT_URL, ...).
#include "backend/backend_registry.h"
#include "backend/lambda_backend.h"

namespace virga::backend {
namespace {

constexpr BackendSetting kSettings[] = {
    {"function", "VIRGA_LAMBDA_FUNCTION", "name or ARN of the Lambda function to invoke (required)"},
    {"qualifier", "", "version or alias of the function (default: $LATEST)"},
    {"max_concurrency", "", "invocations in flight at once (default: 100)"},
    {"start_timeout", "",
     "seconds from an invocation to its function's start before it is declared lost and "
     "replaced (default: 120)"},
    {"heartbeat_timeout", "",
     "seconds without a heartbeat from a running function before it is declared lost "
     "(default: 20)"},
};

Result<LambdaBackendOptions> OptionsFrom(const Settings& settings, bool resolve_aws) {
  LambdaBackendOptions o;
  for (const auto& [name, value] : settings) {
    if (name == "function") {
      o.function = value;
    } else if (name == "qualifier") {
      o.qualifier = value;
    } else if (name == "max_concurrency") {
      VIRGA_ASSIGN_OR_RETURN(uint64_t n, ParseSettingU64("lambda", name, value, 1, 100000));
      o.max_concurrency = static_cast<uint32_t>(n);
    } else if (name == "start_timeout") {
      VIRGA_ASSIGN_OR_RETURN(uint64_t n, ParseSettingU64("lambda", name, value, 1, 3600));
      o.start_timeout = std::chrono::seconds(n);
    } else if (name == "heartbeat_timeout") {
      VIRGA_ASSIGN_OR_RETURN(uint64_t n, ParseSettingU64("lambda", name, value, 1, 3600));
      o.heartbeat_timeout = std::chrono::seconds(n);
    }
  }
  if (o.function.empty()) {
    return Status::InvalidArgument(
        "lambda backend: setting 'function' is required (--lambda-function NAME, "
        "lambda_function= in Python, or $VIRGA_LAMBDA_FUNCTION)");
  }
  if (resolve_aws) {
    VIRGA_ASSIGN_OR_RETURN(o.aws, aws::ResolveSettings("lambda"));
  }
  return o;
}

}  // namespace

extern const BackendType kLambdaBackend = {
    {"lambda", "each function is an asynchronous AWS Lambda invocation of virga's runtime",
     kSettings},
    [](const Settings& settings) { return OptionsFrom(settings, /*resolve_aws=*/true).status(); },
    [](const Settings& settings) -> Result<std::unique_ptr<ComputeBackend>> {
      VIRGA_ASSIGN_OR_RETURN(LambdaBackendOptions o, OptionsFrom(settings, true));
      return MakeLambdaBackend(std::move(o));
    },
};

}  // namespace virga::backend
