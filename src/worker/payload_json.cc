// WorkerPayload and WorkerResult <-> JSON. Parsing never throws out of here:
// a problem is an InvalidArgument naming the field, e.g.
// "payload: field 'minibatch': expected unsigned 32-bit integer".
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "virga/model.h"
#include "virga/worker.h"
#include "worker/optimizer_json.h"

namespace virga {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// Typed reads of one JSON object's fields; an absent optional field keeps
// the default already in *out.
class Fields {
 public:
  Fields(const json& obj, std::string_view what) : obj_(obj), what_(what) {}

  Status Error(std::string_view field, std::string_view problem) const {
    return Status::InvalidArgument(std::string(what_) + ": field '" + std::string(field) +
                                   "': " + std::string(problem));
  }

  template <typename T>
  Status Get(const char* name, T* out, bool required = false) {
    seen_.insert(name);
    auto it = obj_.find(name);
    if (it == obj_.end()) return required ? Error(name, "missing") : Status::OK();
    return Convert(name, *it, out);
  }

  // InvalidArgument for a field no Get asked for (catches typos).
  Status RejectUnknown() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!seen_.count(it.key())) return Error(it.key(), "unknown field");
    return Status::OK();
  }

 private:
  Status Convert(const char* name, const json& v, OptimizerConfig* out) const {
    Status s = OptimizerFromJson(v, out);
    return s.ok() ? s : Error(name, s.message());
  }
  Status Convert(const char* name, const json& v, std::string* out) const {
    if (!v.is_string()) return Error(name, "expected string");
    *out = v.get<std::string>();
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, uint32_t* out) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX)
      return Error(name, "expected unsigned 32-bit integer");
    *out = static_cast<uint32_t>(v.get<uint64_t>());
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, uint64_t* out) const {
    if (!v.is_number_unsigned()) return Error(name, "expected unsigned integer");
    *out = v.get<uint64_t>();
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, int32_t* out) const {
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
      return Error(name, "expected 32-bit integer");
    *out = static_cast<int32_t>(v.get<int64_t>());
    return Status::OK();
  }
  Status Convert(const char* name, const json& v, double* out) const {
    if (v.is_null()) {  // NaN and infinities are written as null
      *out = std::numeric_limits<double>::quiet_NaN();
      return Status::OK();
    }
    if (!v.is_number()) return Error(name, "expected number");
    *out = v.get<double>();
    return Status::OK();
  }
  template <typename T>
  Status Convert(const char* name, const json& v, std::vector<T>* out) const {
    if (!v.is_array()) return Error(name, "expected array");
    out->clear();
    for (size_t i = 0; i < v.size(); ++i) {
      T x{};
      const std::string elem = std::string(name) + "[" + std::to_string(i) + "]";
      VIRGA_RETURN_IF_ERROR(Convert(elem.c_str(), v[i], &x));
      out->push_back(std::move(x));
    }
    return Status::OK();
  }

  const json& obj_;
  std::string_view what_;
  std::set<std::string> seen_;
};

Result<json> ParseObject(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(std::string(what) + ": not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument(std::string(what) + ": expected a JSON object");
  return j;
}

Status ValidatePayload(const WorkerPayload& p, const Fields& f) {
  const std::pair<const char*, const std::string*> required[] = {
      {"job", &p.job}, {"store", &p.store}, {"table", &p.table}, {"queue", &p.queue}};
  for (const auto& [name, value] : required) {
    if (value->empty()) return f.Error(name, "must not be empty");
  }
  if (p.servers.empty()) return f.Error("servers", "must name at least one server");
  if (auto kind = ParseModelName(p.model); !kind.ok()) return f.Error("model", kind.status().message());
  if (p.minibatch == 0) return f.Error("minibatch", "must be >= 1");
  if (p.staleness < -1) return f.Error("staleness", "must be -1 (asynchronous) or >= 0");
  if (p.send_schedule != "auto" && p.send_schedule != "early" && p.send_schedule != "with_push")
    return f.Error("send_schedule", "must be auto, early or with_push");
  if (p.local_steps == 0) return f.Error("local_steps", "must be >= 1");
  if (p.local_steps > 1 && p.staleness != -1)
    return f.Error("local_steps", "must be 1 unless staleness is -1 (asynchronous)");
  if (p.workers == 0) return f.Error("workers", "must be >= 1");
  if (p.epochs == 0) return f.Error("epochs", "must be >= 1");
  if (p.lease_ms == 0) return f.Error("lease_ms", "must be >= 1");
  return Status::OK();
}

ojson TimesToJson(const IterationTimes& t) {
  std::vector<uint64_t> h = t.histogram;
  while (!h.empty() && h.back() == 0) h.pop_back();
  return ojson{{"iterations", t.iterations}, {"data_wait_us", t.data_wait_us},
               {"pull_us", t.pull_us},       {"compute_us", t.compute_us},
               {"push_us", t.push_us},       {"p50_us", t.p50_us},
               {"p99_us", t.p99_us},         {"histogram", h}};
}

}  // namespace

std::string PayloadToJson(const WorkerPayload& p) {
  ojson j{{"job", p.job},
          {"servers", p.servers},
          {"token", p.token},
          {"store", p.store},
          {"dataset", p.dataset},
          {"table", p.table},
          {"queue", p.queue},
          {"model", p.model},
          {"minibatch", p.minibatch},
          {"staleness", p.staleness},
          {"send_schedule", p.send_schedule},
          {"local_steps", p.local_steps},
          {"optimizer", OptimizerToJson(p.optimizer)},
          {"workers", p.workers},
          {"epochs", p.epochs},
          {"items", p.items},
          {"lease_ms", p.lease_ms},
          {"lifetime_ms", p.lifetime_ms},
          {"stop_margin_ms", p.stop_margin_ms},
          {"max_idle_ms", p.max_idle_ms},
          {"max_fault_ms", p.max_fault_ms},
          {"driver_timeout_ms", p.driver_timeout_ms},
          {"spin_us", p.spin_us}};
  if (!p.tls_ca.empty()) j["tls_ca"] = p.tls_ca;  // a certificate, not a secret
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Result<WorkerPayload> PayloadFromJson(std::string_view text) {
  VIRGA_ASSIGN_OR_RETURN(json j, ParseObject(text, "payload"));
  WorkerPayload p;
  Fields f(j, "payload");
  VIRGA_RETURN_IF_ERROR(f.Get("job", &p.job, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("servers", &p.servers, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("token", &p.token));
  VIRGA_RETURN_IF_ERROR(f.Get("tls_ca", &p.tls_ca));
  VIRGA_RETURN_IF_ERROR(f.Get("store", &p.store, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("dataset", &p.dataset));
  VIRGA_RETURN_IF_ERROR(f.Get("table", &p.table, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("queue", &p.queue, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("model", &p.model));
  VIRGA_RETURN_IF_ERROR(f.Get("minibatch", &p.minibatch));
  VIRGA_RETURN_IF_ERROR(f.Get("staleness", &p.staleness));
  VIRGA_RETURN_IF_ERROR(f.Get("send_schedule", &p.send_schedule));
  VIRGA_RETURN_IF_ERROR(f.Get("local_steps", &p.local_steps));
  VIRGA_RETURN_IF_ERROR(f.Get("optimizer", &p.optimizer));
  VIRGA_RETURN_IF_ERROR(f.Get("workers", &p.workers));
  VIRGA_RETURN_IF_ERROR(f.Get("epochs", &p.epochs));
  VIRGA_RETURN_IF_ERROR(f.Get("items", &p.items));
  VIRGA_RETURN_IF_ERROR(f.Get("lease_ms", &p.lease_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("lifetime_ms", &p.lifetime_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("stop_margin_ms", &p.stop_margin_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("max_idle_ms", &p.max_idle_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("max_fault_ms", &p.max_fault_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("driver_timeout_ms", &p.driver_timeout_ms));
  VIRGA_RETURN_IF_ERROR(f.Get("spin_us", &p.spin_us));
  VIRGA_RETURN_IF_ERROR(f.RejectUnknown());
  VIRGA_RETURN_IF_ERROR(ValidatePayload(p, f));
  return p;
}

std::string ResultToJson(const WorkerResult& r) {
  ojson j{{"function_id", r.function_id},
          {"end_reason", r.end_reason},
          {"samples", r.samples},
          {"items_acked", r.items_acked},
          {"items_released", r.items_released},
          {"items_lost", r.items_lost},
          {"items_rejected", r.items_rejected},
          {"train_loss", r.train_loss},
          {"epoch_samples", r.epoch_samples},
          {"epoch_loss", r.epoch_loss},
          {"stale_waits", r.stale_waits},
          {"stale_timeouts", r.stale_timeouts},
          {"server_faults", r.server_faults},
          {"pulls_early", r.pulls_early},
          {"pulls_with_push", r.pulls_with_push},
          {"bytes_sent", r.bytes_sent},
          {"bytes_received", r.bytes_received},
          {"wall_seconds", r.wall_seconds},
          {"peak_rss_bytes", r.peak_rss_bytes},
          {"times", TimesToJson(r.times)}};
  // NaN (no rows trained) is written as null; invalid UTF-8 in end_reason
  // (a message naming a key) is replaced rather than throwing.
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

Result<WorkerResult> ResultFromJson(std::string_view text) {
  VIRGA_ASSIGN_OR_RETURN(json j, ParseObject(text, "worker result"));
  WorkerResult r;
  Fields f(j, "worker result");
  VIRGA_RETURN_IF_ERROR(f.Get("function_id", &r.function_id));
  VIRGA_RETURN_IF_ERROR(f.Get("end_reason", &r.end_reason, /*required=*/true));
  VIRGA_RETURN_IF_ERROR(f.Get("samples", &r.samples));
  VIRGA_RETURN_IF_ERROR(f.Get("items_acked", &r.items_acked));
  VIRGA_RETURN_IF_ERROR(f.Get("items_released", &r.items_released));
  VIRGA_RETURN_IF_ERROR(f.Get("items_lost", &r.items_lost));
  VIRGA_RETURN_IF_ERROR(f.Get("items_rejected", &r.items_rejected));
  VIRGA_RETURN_IF_ERROR(f.Get("train_loss", &r.train_loss));
  VIRGA_RETURN_IF_ERROR(f.Get("epoch_samples", &r.epoch_samples));
  VIRGA_RETURN_IF_ERROR(f.Get("epoch_loss", &r.epoch_loss));
  VIRGA_RETURN_IF_ERROR(f.Get("stale_waits", &r.stale_waits));
  VIRGA_RETURN_IF_ERROR(f.Get("stale_timeouts", &r.stale_timeouts));
  VIRGA_RETURN_IF_ERROR(f.Get("server_faults", &r.server_faults));
  VIRGA_RETURN_IF_ERROR(f.Get("wall_seconds", &r.wall_seconds));
  VIRGA_RETURN_IF_ERROR(f.Get("pulls_early", &r.pulls_early));
  VIRGA_RETURN_IF_ERROR(f.Get("pulls_with_push", &r.pulls_with_push));
  VIRGA_RETURN_IF_ERROR(f.Get("peak_rss_bytes", &r.peak_rss_bytes));
  VIRGA_RETURN_IF_ERROR(f.Get("bytes_sent", &r.bytes_sent));
  VIRGA_RETURN_IF_ERROR(f.Get("bytes_received", &r.bytes_received));
  // Newer fields are optional and unknown ones ignored: results of other
  // versions of the worker still parse.
  auto t = j.find("times");
  if (t != j.end()) {
    if (!t->is_object()) return f.Error("times", "expected object");
    Fields tf(*t, "worker result: times");
    IterationTimes& x = r.times;
    VIRGA_RETURN_IF_ERROR(tf.Get("iterations", &x.iterations));
    VIRGA_RETURN_IF_ERROR(tf.Get("data_wait_us", &x.data_wait_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("pull_us", &x.pull_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("compute_us", &x.compute_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("push_us", &x.push_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("p50_us", &x.p50_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("p99_us", &x.p99_us));
    VIRGA_RETURN_IF_ERROR(tf.Get("histogram", &x.histogram));
  }
  return r;
}

}  // namespace virga
