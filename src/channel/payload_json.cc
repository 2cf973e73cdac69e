// ChannelPayload <-> JSON. "channel_mode" marks a channel worker's payload
// (cmd_worker.cc dispatches on it).
#include <nlohmann/json.hpp>

#include "channel/channel_worker.h"
#include "common/json_field.h"
#include "virga/model.h"
#include "worker/optimizer_json.h"

namespace virga::channel {

using json = nlohmann::json;

namespace {

Status Field(std::string_view name, std::string_view problem) {
  return Status::InvalidArgument("channel payload: field '" + std::string(name) + "': " +
                                 std::string(problem));
}

// Reads obj[name] into *out when present (required: must be present).
template <typename T>
Status Read(const json& obj, const char* name, T* out, bool required = false) {
  return ReadJsonField(obj, name, out, required, Field);
}

}  // namespace

std::string ChannelPayloadToJson(const ChannelPayload& p) {
  json j{{"channel_mode", p.mode},
         {"channel_uri", p.channel_uri},
         {"job", p.job},
         {"store", p.store},
         {"dataset", p.dataset},
         {"model", p.model},
         {"slot", p.slot},
         {"workers", p.workers},
         {"epochs", p.epochs},
         {"minibatch", p.minibatch},
         {"rows_per_item", p.rows_per_item},
         {"seed", p.seed},
         {"dim", p.dim},
         {"optimizer", OptimizerToJson(p.optimizer)},
         {"round_timeout_ms", p.round_timeout_ms},
         {"keep_rounds", p.keep_rounds},
         {"max_fault_ms", p.max_fault_ms},
         {"lifetime_ms", p.lifetime_ms}};
  return j.dump();
}

Result<ChannelPayload> ChannelPayloadFromJson(std::string_view text) {
  json j = json::parse(std::string(text), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("channel payload: not a JSON object");
  }
  static const char* const kKnown[] = {"channel_mode", "channel_uri", "job", "store", "dataset",
                                       "model", "slot", "workers", "epochs", "minibatch",
                                       "rows_per_item", "seed", "dim", "optimizer",
                                       "round_timeout_ms", "keep_rounds", "max_fault_ms",
                                       "lifetime_ms"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown) known = known || it.key() == k;
    if (!known) return Field(it.key(), "unknown field");
  }
  ChannelPayload p;
  VIRGA_RETURN_IF_ERROR(Read(j, "channel_mode", &p.mode, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "channel_uri", &p.channel_uri));
  VIRGA_RETURN_IF_ERROR(Read(j, "job", &p.job, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "store", &p.store, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "dataset", &p.dataset, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "model", &p.model));
  VIRGA_RETURN_IF_ERROR(Read(j, "slot", &p.slot, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "workers", &p.workers, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "epochs", &p.epochs, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "minibatch", &p.minibatch));
  VIRGA_RETURN_IF_ERROR(Read(j, "rows_per_item", &p.rows_per_item));
  VIRGA_RETURN_IF_ERROR(Read(j, "seed", &p.seed));
  VIRGA_RETURN_IF_ERROR(Read(j, "dim", &p.dim, true));
  VIRGA_RETURN_IF_ERROR(Read(j, "round_timeout_ms", &p.round_timeout_ms));
  VIRGA_RETURN_IF_ERROR(Read(j, "keep_rounds", &p.keep_rounds));
  VIRGA_RETURN_IF_ERROR(Read(j, "max_fault_ms", &p.max_fault_ms));
  VIRGA_RETURN_IF_ERROR(Read(j, "lifetime_ms", &p.lifetime_ms));
  if (auto it = j.find("optimizer"); it != j.end()) {
    VIRGA_RETURN_IF_ERROR(OptimizerFromJson(*it, &p.optimizer).WithContext("channel payload"));
  }
  if (p.mode != "store" && p.mode != "redis") return Field("channel_mode", "expected store or redis");
  if (p.mode == "redis" && p.channel_uri.empty()) return Field("channel_uri", "required for redis");
  if (p.job.empty()) return Field("job", "empty");
  if (p.workers == 0) return Field("workers", "must be >= 1");
  if (p.slot >= p.workers) return Field("slot", "must be < workers");
  if (p.epochs == 0) return Field("epochs", "must be >= 1");
  if (p.minibatch == 0) return Field("minibatch", "must be >= 1");
  if (p.rows_per_item == 0) return Field("rows_per_item", "must be >= 1");
  if (p.dim < 2 || p.dim > (uint64_t{1} << 31)) return Field("dim", "must be 2 .. 2^31");
  if (p.round_timeout_ms == 0) return Field("round_timeout_ms", "must be >= 1");
  if (p.keep_rounds < 2) return Field("keep_rounds", "must be >= 2");
  if (auto m = ParseModelName(p.model); !m.ok()) return Field("model", m.status().message());
  return p;
}

}  // namespace virga::channel
