#include "lambda/lambda_event.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace virga::lambda {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

Status FieldError(std::string_view what, std::string_view field, std::string_view problem) {
  return Status::InvalidArgument(std::string(what) + ": field '" + std::string(field) +
                                 "': " + std::string(problem));
}

// Reads one field of `obj` into *out; an absent optional field leaves *out.
class Reader {
 public:
  Reader(const json& obj, std::string_view what) : obj_(obj), what_(what) {}

  template <typename T>
  Status Get(const char* name, T* out, bool required) const {
    auto it = obj_.find(name);
    if (it == obj_.end()) return required ? FieldError(what_, name, "missing") : Status::OK();
    return Convert(name, *it, out);
  }

 private:
  Status Convert(const char* name, const json& v, std::string* out) const {
    if (!v.is_string()) return FieldError(what_, name, "expected string");
    *out = v.get<std::string>();
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, uint64_t* out) const {
    if (!v.is_number_unsigned()) return FieldError(what_, name, "expected unsigned 64-bit integer");
    *out = v.get<uint64_t>();
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, uint32_t* out) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > std::numeric_limits<uint32_t>::max())
      return FieldError(what_, name, "expected unsigned 32-bit integer");
    *out = static_cast<uint32_t>(v.get<uint64_t>());
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, int* out) const {
    if (!v.is_number_integer() || v.get<int64_t>() < std::numeric_limits<int>::min() ||
        v.get<int64_t>() > std::numeric_limits<int>::max())
      return FieldError(what_, name, "expected 32-bit integer");
    *out = static_cast<int>(v.get<int64_t>());
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, double* out) const {
    if (!v.is_number()) return FieldError(what_, name, "expected number");
    *out = v.get<double>();
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, bool* out) const {
    if (!v.is_boolean()) return FieldError(what_, name, "expected boolean");
    *out = v.get<bool>();
    return Status::OK();
  }

  const json& obj_;
  std::string_view what_;
};

// Parses `text` as a JSON object; InvalidArgument "<what>: ..." otherwise.
Result<json> ParseObject(std::string_view text, std::string_view what) {
  json obj = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) return Status::InvalidArgument(std::string(what) + ": not JSON");
  if (!obj.is_object()) return Status::InvalidArgument(std::string(what) + ": not a JSON object");
  return obj;
}

// Text that may hold any bytes (a child's output) as valid JSON: invalid
// UTF-8 is replaced rather than failing the whole report.
std::string Dump(const ojson& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

Result<LambdaEvent> EventFromJson(std::string_view text) {
  VIRGA_ASSIGN_OR_RETURN(json obj, ParseObject(text, "event"));
  Reader r(obj, "event");
  uint64_t version = 0;
  VIRGA_RETURN_IF_ERROR(r.Get("virga", &version, true));
  if (version != kEventVersion) {
    return FieldError("event", "virga",
                      "unsupported version " + std::to_string(version) + " (this runtime speaks " +
                          std::to_string(kEventVersion) + ")");
  }
  LambdaEvent event;
  VIRGA_RETURN_IF_ERROR(r.Get("function_id", &event.function_id, true));
  VIRGA_RETURN_IF_ERROR(r.Get("label", &event.label, false));
  VIRGA_RETURN_IF_ERROR(r.Get("lifetime_ms", &event.lifetime_ms, false));
  VIRGA_RETURN_IF_ERROR(r.Get("payload", &event.payload, true));
  return event;
}

std::string EventToJson(const LambdaEvent& event) {
  ojson j;
  j["virga"] = kEventVersion;
  j["function_id"] = event.function_id;
  j["label"] = event.label;
  j["lifetime_ms"] = event.lifetime_ms;
  j["payload"] = event.payload;
  return Dump(j);
}

std::string ReportToJson(const InvocationReport& report) {
  ojson j;
  j["function_id"] = report.function_id;
  j["request_id"] = report.request_id;
  j["exit_code"] = report.exit_code;
  j["reason"] = report.reason;
  j["output"] = report.output;
  j["output_truncated"] = report.output_truncated;
  j["stderr_tail"] = report.stderr_tail;
  j["wall_seconds"] = report.wall_seconds;
  j["peak_rss_bytes"] = report.peak_rss_bytes;
  j["cpu_seconds"] = report.cpu_seconds;
  return Dump(j);
}

Result<InvocationReport> ReportFromJson(std::string_view text) {
  VIRGA_ASSIGN_OR_RETURN(json obj, ParseObject(text, "report"));
  Reader r(obj, "report");
  InvocationReport report;
  VIRGA_RETURN_IF_ERROR(r.Get("function_id", &report.function_id, true));
  VIRGA_RETURN_IF_ERROR(r.Get("request_id", &report.request_id, true));
  VIRGA_RETURN_IF_ERROR(r.Get("exit_code", &report.exit_code, true));
  VIRGA_RETURN_IF_ERROR(r.Get("reason", &report.reason, false));
  VIRGA_RETURN_IF_ERROR(r.Get("output", &report.output, true));
  VIRGA_RETURN_IF_ERROR(r.Get("output_truncated", &report.output_truncated, false));
  VIRGA_RETURN_IF_ERROR(r.Get("stderr_tail", &report.stderr_tail, true));
  VIRGA_RETURN_IF_ERROR(r.Get("wall_seconds", &report.wall_seconds, true));
  VIRGA_RETURN_IF_ERROR(r.Get("peak_rss_bytes", &report.peak_rss_bytes, true));
  VIRGA_RETURN_IF_ERROR(r.Get("cpu_seconds", &report.cpu_seconds, true));
  return report;
}

std::string ErrorToJson(std::string_view type, std::string_view message) {
  ojson j;
  j["errorMessage"] = message;
  j["errorType"] = type;
  j["stackTrace"] = ojson::array();
  return Dump(j);
}

}  // namespace virga::lambda
