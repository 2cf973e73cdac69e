#include "lambda/lambda_runtime.h"

#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "lambda/invocation_child.h"
#include "lambda/lambda_event.h"

namespace virga::lambda {
namespace {

using Clock = std::chrono::steady_clock;

int64_t EpochMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string SignalReason(int sig) {
  const char* descr = ::sigdescr_np(sig);
  return descr ? fmt::format("signal {} ({})", sig, descr) : fmt::format("signal {}", sig);
}

Result<uint64_t> MemoryFromEnvironment() {
  const char* text = std::getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
  if (text == nullptr || *text == '\0') {
    return Status::InvalidArgument("AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not set");
  }
  std::string_view s(text);
  uint64_t mb = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), mb);
  if (ec != std::errc() || end != s.data() + s.size() || mb == 0) {
    return Status::InvalidArgument(
        fmt::format("AWS_LAMBDA_FUNCTION_MEMORY_SIZE '{}': expected a number of MB", s));
  }
  return mb;
}

// Lambda refuses a response over 6 MB; 1 MiB of output can grow up to six
// times as JSON (a control byte is written as a six-character escape).
constexpr size_t kMaxReportBytes = 5'000'000;

// The report's JSON, its output cut (output_truncated) until it fits.
std::string FitForLambda(InvocationReport* report) {
  std::string json = ReportToJson(*report);
  while (json.size() > kMaxReportBytes && !report->output.empty()) {
    report->output.resize(report->output.size() / 2);
    report->output_truncated = true;
    json = ReportToJson(*report);
  }
  return json;
}

// One invocation: the child, then what to post.
class InvocationRunner {
 public:
  InvocationRunner(const LambdaRuntimeOptions& options, uint64_t memory_mb, RuntimeApiClient* api)
      : options_(options), memory_mb_(memory_mb), api_(api) {}

  void Run(const Invocation& inv) {
    Result<LambdaEvent> event = EventFromJson(inv.body);
    if (!event.ok()) {
      Log(inv, "", event.status().message());
      Posted(inv, api_->PostError(inv.request_id, kErrorBadEvent, event.status().message()));
      return;
    }
    const int64_t time_left_ms = inv.deadline_ms > 0 ? inv.deadline_ms - EpochMillisNow() : -1;
    ChildSpec spec = ChildFor(inv, *event, time_left_ms);
    Result<ChildOutcome> child = RunChild(spec);
    if (!child.ok()) {
      Log(inv, event->label, child.status().ToString());
      Posted(inv, api_->PostError(inv.request_id, kErrorRuntime, child.status().ToString()));
      return;
    }
    InvocationReport report = ReportFor(inv, *event, *child);
    std::string report_json = FitForLambda(&report);
    Log(inv, event->label,
        fmt::format("function {}: {} in {:.3f} s", event->function_id, report.reason,
                    report.wall_seconds));
    if (report.exit_code < 0 && !child->killed_at_deadline) {
      Posted(inv, api_->PostError(inv.request_id, kErrorCrashed, report_json));
    } else {
      Posted(inv, api_->PostResponse(inv.request_id, report_json));
    }
  }

 private:
  ChildSpec ChildFor(const Invocation& inv, const LambdaEvent& event, int64_t time_left_ms) const {
    ChildSpec spec;
    const std::string_view payload = event.payload;
    spec.body = [this, payload] { return options_.run_payload(payload); };
    const uint32_t lifetime = ChildLifetimeMs(event.lifetime_ms, time_left_ms, options_);
    spec.env = {{"VIRGA_FUNCTION_ID", std::to_string(event.function_id)},
                {"VIRGA_FUNCTION_LIFETIME_MS", std::to_string(lifetime)},
                {"VIRGA_FUNCTION_MEMORY_MB", std::to_string(memory_mb_)},
                {"VIRGA_INVOCATION_ID", inv.request_id},
                {"_X_AMZN_TRACE_ID", inv.trace_id}};
    spec.memory_mb = options_.enforce_memory_cap ? memory_mb_ : 0;
    if (time_left_ms >= 0) {
      spec.kill_at = Clock::now() + std::chrono::milliseconds(time_left_ms) - options_.kill_margin;
    }
    spec.tee_stderr = options_.tee_stderr;
    return spec;
  }

  InvocationReport ReportFor(const Invocation& inv, const LambdaEvent& event,
                             ChildOutcome& child) const {
    InvocationReport r;
    r.function_id = event.function_id;
    r.request_id = inv.request_id;
    if (WIFEXITED(child.wait_status)) {
      r.exit_code = WEXITSTATUS(child.wait_status);
      r.reason = r.exit_code == kExitOutOfMemory
                     ? fmt::format("out of memory (exit {})", r.exit_code)
                     : fmt::format("exit {}", r.exit_code);
    } else if (WIFSIGNALED(child.wait_status)) {
      r.exit_code = -WTERMSIG(child.wait_status);
      r.reason = child.killed_at_deadline
                     ? fmt::format("killed: still running {} ms before the invocation deadline",
                                   options_.kill_margin.count())
                     : SignalReason(WTERMSIG(child.wait_status));
    } else {
      r.exit_code = -1;
      r.reason = fmt::format("wait status {:#x}", child.wait_status);
    }
    r.output = std::move(child.output);
    r.output_truncated = child.output_truncated;
    r.stderr_tail = std::move(child.stderr_tail);
    r.wall_seconds = child.wall_seconds;
    r.peak_rss_bytes = child.peak_rss_bytes;
    r.cpu_seconds = child.cpu_seconds;
    return r;
  }

  void Log(const Invocation& inv, std::string_view label, std::string_view what) const {
    if (!options_.log) return;
    std::fprintf(stderr, "virga lambda-runtime: %s%s%.*s: %.*s\n", inv.request_id.c_str(),
                 label.empty() ? "" : " ", static_cast<int>(label.size()), label.data(),
                 static_cast<int>(what.size()), what.data());
  }

  void Posted(const Invocation& inv, const Status& s) const {
    if (!s.ok()) {
      std::fprintf(stderr, "virga lambda-runtime: %s: could not post the result: %s\n",
                   inv.request_id.c_str(), s.ToString().c_str());
    }
  }

  const LambdaRuntimeOptions& options_;
  const uint64_t memory_mb_;
  RuntimeApiClient* api_;
};

Result<std::string> BaseUrl(const LambdaRuntimeOptions& options) {
  if (!options.base_url.empty()) return options.base_url;
  const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
  if (api == nullptr || *api == '\0') {
    return Status::InvalidArgument(
        "AWS_LAMBDA_RUNTIME_API is not set (virga lambda-runtime runs inside AWS Lambda)");
  }
  return RuntimeApiClient::BaseUrlFor(api);
}

}  // namespace

uint32_t ChildLifetimeMs(uint32_t event_lifetime_ms, int64_t time_left_ms,
                         const LambdaRuntimeOptions& options) {
  if (time_left_ms < 0) return event_lifetime_ms;
  const int64_t margin = std::max<int64_t>(
      options.lifetime_margin_min.count(),
      static_cast<int64_t>(options.lifetime_margin_fraction * static_cast<double>(time_left_ms)));
  int64_t bound = std::clamp<int64_t>(time_left_ms - margin, 1, UINT32_MAX);
  if (event_lifetime_ms > 0) bound = std::min<int64_t>(bound, event_lifetime_ms);
  return static_cast<uint32_t>(bound);
}

Status RunLambdaRuntime(const LambdaRuntimeOptions& options) {
  VIRGA_ASSIGN_OR_RETURN(std::string base_url, BaseUrl(options));
  RuntimeApiClient api(base_url, options.api);
  Result<uint64_t> memory_mb =
      options.memory_mb > 0 ? Result<uint64_t>(options.memory_mb) : MemoryFromEnvironment();
  Status init = memory_mb.status();
  if (init.ok() && !options.run_payload) init = Status::InvalidArgument("no payload runner");
  if (!init.ok()) {
    Status posted = api.PostInitError(kErrorInit, init.message());
    if (!posted.ok()) return init.WithContext("init/error not posted: " + posted.ToString());
    return init;
  }
  ::signal(SIGCHLD, SIG_DFL);  // children must stay waitable
  ::signal(SIGPIPE, SIG_IGN);  // a closed log pipe is an error, not our end (children reset it)
  InvocationRunner runner(options, *memory_mb, &api);
  for (uint64_t done = 0; options.max_invocations == 0 || done < options.max_invocations; ++done) {
    VIRGA_ASSIGN_OR_RETURN(Invocation inv, api.Next());
    runner.Run(inv);
  }
  return Status::OK();
}

}  // namespace virga::lambda
