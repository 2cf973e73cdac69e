// The `lambda` compute backend: each function is an asynchronous invocation
// of an AWS Lambda function (or a Lambda-compatible service) that runs
// virga's custom runtime (`virga lambda-runtime`, the `bootstrap` of the
// package `virga deploy lambda --zip` builds).
//
// Launch sends the Invoke API's Event invocation
//   POST {endpoint}/2015-03-31/functions/{function}/invocations[?Qualifier=Q]
//   X-Amz-Invocation-Type: Event, signed with SigV4 (service "lambda")
// whose body is the event (references only, never data; Lambda caps async
// events at 1 MB):
//   {"virga": 1, "function_id": N, "label": "...", "lifetime_ms": L, "payload": "<worker payload>"}
// The runtime runs the payload as `virga worker` would, with VIRGA_FUNCTION_ID = N.
//
// A function cannot be signalled or watched from outside, so everything goes
// through the job's key-value store on its parameter servers (the servers,
// token and job come from the worker payload; include/virga/worker.h):
//  - state: the worker claims <job>/claim/<N> when it starts (running) and
//    refreshes <job>/fn/<N> about once a second (heartbeat, progress); its
//    final value there (end_reason, wall seconds, peak memory) ends it.
//  - kill: Kill writes <job>/kill/<N>; the worker stops within its stop-check
//    period (200 ms) and reports "killed".
//  - lost: no claim within start_timeout of the invocation (a cold start that
//    never came, an event Lambda dropped) or no heartbeat for
//    heartbeat_timeout (the sandbox died or timed out): the function ends
//    kFailed "lost: ..." and its kill key is written, so a late start exits.
//  - duplicates: Lambda may deliver an event twice; the second delivery finds
//    the claim taken and exits at once, counted in <job>/duplicates.
// Throttling (429) and 5xx answers of Invoke are retried with exponential
// backoff and jitter; at most max_concurrency invocations are in flight
// (launches beyond wait, kStarting). GB-seconds are the configured memory
// times the wall time the function reports.
//
// Only parameter-server workers run here: a payload without "job",
// "servers" and "token" (a storage-channel worker) is refused at Launch.
//
// Thread safety: every method may be called from any thread; one monitor
// thread sends the invocations and polls the key-value store.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "aws/settings.h"
#include "virga/backend.h"

namespace virga {

struct LambdaBackendOptions {
  std::string function;              // name or ARN of the Lambda function (required)
  std::string qualifier;             // version or alias; "" = $LATEST
  uint32_t max_concurrency = 100;    // invocations in flight at once
  std::chrono::milliseconds start_timeout{120'000};     // invoked -> claim, else lost
  std::chrono::milliseconds heartbeat_timeout{20'000};  // silence while running, else lost
  std::chrono::milliseconds kill_grace{3'000};          // killed -> final report, else kKilled anyway
  int max_invoke_attempts = 8;       // tries per invocation on 429, 5xx and transport faults
  std::chrono::milliseconds poll_interval{200};        // key-value polling period
  aws::Settings aws;                 // endpoint, credentials, region (service "lambda")
  bool check_function = true;        // a DryRun invocation at creation: a missing function or
                                     // bad credentials fail MakeLambdaBackend, not every launch
};

Result<std::unique_ptr<ComputeBackend>> MakeLambdaBackend(LambdaBackendOptions options);

}  // namespace virga
