// The wire format between the `lambda` compute backend and the Lambda
// runtime (docs/lambda.md, version 1): the invocation event the backend sends
// and the report the runtime answers with.
//
// Event (the Invoke body):
//   {"virga": 1, "function_id": <u64>, "label": "<text>", "lifetime_ms": <u32, 0 = none>,
//    "payload": "<worker payload text>"}
// Report (the body of POST .../response; for a crash, the errorMessage of
// POST .../error):
//   {"function_id": <u64>, "request_id": "<Lambda request id>", "exit_code": <int>,
//    "reason": "<text>", "output": "<stdout, at most 1 MiB>", "output_truncated": <bool>,
//    "stderr_tail": "<last 4 KiB of stderr>", "wall_seconds": <double>,
//    "peak_rss_bytes": <u64>, "cpu_seconds": <double>}
//
// Pure functions, no I/O; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga::lambda {

inline constexpr uint32_t kEventVersion = 1;

// Error types posted to .../error (the errorType field and the
// Lambda-Runtime-Function-Error-Type header).
inline constexpr std::string_view kErrorBadEvent = "Virga.BadEvent";     // event not understood
inline constexpr std::string_view kErrorCrashed = "Virga.Crashed";       // child died of a signal
inline constexpr std::string_view kErrorRuntime = "Virga.RuntimeError";  // could not run it
inline constexpr std::string_view kErrorInit = "Virga.InitError";        // runtime cannot start

struct LambdaEvent {
  uint64_t function_id = 0;  // required
  std::string label;         // optional, free text for logs
  uint32_t lifetime_ms = 0;  // optional; 0 = none (the invocation deadline still applies)
  std::string payload;       // required: what `virga worker --payload FILE` would read
};

// Unknown fields are ignored (a newer backend may add some); "virga" must be
// kEventVersion. InvalidArgument naming the field: "event: field
// 'function_id': expected unsigned 64-bit integer", "event: field 'payload':
// missing", "event: not a JSON object: ...".
Result<LambdaEvent> EventFromJson(std::string_view json);
std::string EventToJson(const LambdaEvent& event);

// What one invocation's child did.
struct InvocationReport {
  uint64_t function_id = 0;
  std::string request_id;
  // Its exit status when it exited; minus the signal number when it died of
  // one (-9 when the runtime killed it at the deadline).
  int exit_code = 0;
  // "exit 0", "signal 11 (Segmentation fault)", "killed 0.3 s before the invocation
  // deadline", "out of memory (exit 86)".
  std::string reason;
  std::string output;  // its stdout (the worker's result JSON line), at most kMaxOutputBytes
  bool output_truncated = false;
  std::string stderr_tail;  // the last kStderrTailBytes of its stderr
  double wall_seconds = 0;  // fork to exit
  uint64_t peak_rss_bytes = 0;
  double cpu_seconds = 0;  // user + system
};

inline constexpr size_t kMaxOutputBytes = size_t{1} << 20;
inline constexpr size_t kStderrTailBytes = 4096;

std::string ReportToJson(const InvocationReport& report);
// For the backend: InvalidArgument naming the field when `json` is not a
// report. Unknown fields are ignored.
Result<InvocationReport> ReportFromJson(std::string_view json);

// The error document of POST .../error and .../init/error:
// {"errorMessage": message, "errorType": type, "stackTrace": []}.
std::string ErrorToJson(std::string_view type, std::string_view message);

}  // namespace virga::lambda
