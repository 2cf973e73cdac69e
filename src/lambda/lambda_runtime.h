// The AWS Lambda custom runtime of virga (`virga lambda-runtime`, started by
// the deployment package's `bootstrap`; docs/lambda.md).
//
// The loop: GET invocation/next; parse the event (lambda_event.h); run its
// payload in a forked child with the environment a local function gets
// (include/virga/backend.h):
//   VIRGA_FUNCTION_ID           the event's function_id
//   VIRGA_FUNCTION_LIFETIME_MS  min(event lifetime_ms, time left until the invocation
//                               deadline minus max(lifetime_margin_min,
//                               lifetime_margin_fraction * time left)), at least 1
//   VIRGA_FUNCTION_MEMORY_MB    $AWS_LAMBDA_FUNCTION_MEMORY_SIZE
//   VIRGA_INVOCATION_ID         the Lambda request id (duplicate deliveries share none,
//                               retries of one event do not either: the backend
//                               tells them apart by it)
//   _X_AMZN_TRACE_ID            the Lambda-Runtime-Trace-Id header (unset without one)
// then post what it did: .../response with the report (lambda_event.h) when
// it exited or was killed at the deadline, .../error Virga.Crashed with the
// report as errorMessage when it died of a signal, .../error Virga.BadEvent
// naming the field when the event is malformed.
//
// Each child is forked from the loop, which never runs a payload itself, so
// no state of one invocation reaches the next, and a crash or an allocation
// failure ends only its child. A child still running kill_margin before the
// deadline is SIGKILLed with its process group; the worker normally stops
// itself before that, at the end of its lifetime, returning its lease.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lambda/runtime_api.h"
#include "virga/backend.h"
#include "virga/status.h"

namespace virga::lambda {

struct LambdaRuntimeOptions {
  // Runs one event's payload in the child; returns its exit code. Required:
  // the CLI passes `virga worker`'s own entry (RunWorkerPayload).
  std::function<int(std::string_view payload)> run_payload;
  // "http://host:port/2018-06-01/runtime/"; "": built from $AWS_LAMBDA_RUNTIME_API.
  std::string base_url;
  // Memory announced to the child (VIRGA_FUNCTION_MEMORY_MB); 0: from
  // $AWS_LAMBDA_FUNCTION_MEMORY_SIZE, which must then be set.
  uint64_t memory_mb = 0;
  // Also make it the child's RLIMIT_AS, as the local backend does, so an
  // allocation beyond it fails in the child (exit kExitOutOfMemory) before
  // Lambda's own limit ends the whole environment. Off in sanitizer builds.
  bool enforce_memory_cap = !internal::kSanitizedBuild;
  // The child's lifetime ends max(min, fraction * time left) before the deadline.
  std::chrono::milliseconds lifetime_margin_min{1'000};
  double lifetime_margin_fraction = 0.05;
  // A child still running this long before the deadline is killed, leaving
  // time to post its report.
  std::chrono::milliseconds kill_margin{300};
  // Copy the child's stderr to the runtime's (the function's log in Lambda).
  bool tee_stderr = true;
  // One line per invocation on stderr.
  bool log = true;
  // Return OK after this many invocations; 0 = loop until an error.
  uint64_t max_invocations = 0;
  RuntimeApiOptions api;
};

// Runs the loop. Returns OK after max_invocations, else the error that
// stopped it: a startup problem (AWS_LAMBDA_RUNTIME_API missing or not a
// host:port, $AWS_LAMBDA_FUNCTION_MEMORY_SIZE missing or not a number,
// run_payload unset), posted to init/error when the API's address is known,
// or a failed `next` (transport faults past the retries, or an answer other
// than 200). A failed post of one invocation's result is logged and the loop
// goes on.
// REQUIRES: nothing else in the process reaps children.
Status RunLambdaRuntime(const LambdaRuntimeOptions& options);

// VIRGA_FUNCTION_LIFETIME_MS for an event asking `event_lifetime_ms` (0 =
// none) with `time_left_ms` until the deadline (< 0: no deadline known).
// 0 only when neither bounds it.
uint32_t ChildLifetimeMs(uint32_t event_lifetime_ms, int64_t time_left_ms,
                         const LambdaRuntimeOptions& options);

}  // namespace virga::lambda
