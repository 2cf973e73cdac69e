#include "worker/optimizer_json.h"

#include <string>

#include "common/json_field.h"

namespace virga {

using json = nlohmann::json;

namespace {

Status Field(std::string_view name, std::string_view problem) {
  return Status::InvalidArgument("optimizer." + std::string(name) + ": " + std::string(problem));
}

template <typename T>
Status Read(const json& obj, const char* name, T* out) {
  return ReadJsonField(obj, name, out, /*required=*/false, Field);
}

}  // namespace

json OptimizerToJson(const OptimizerConfig& c) {
  return json{{"kind", OptimizerName(c.kind)},
              {"learning_rate", c.learning_rate},
              {"l1", c.l1},
              {"l2", c.l2},
              {"momentum", c.momentum},
              {"beta1", c.beta1},
              {"beta2", c.beta2},
              {"epsilon", c.epsilon},
              {"initial_accumulator", c.initial_accumulator},
              {"ftrl_beta", c.ftrl_beta},
              {"clip", c.clip},
              {"schedule", LrScheduleName(c.schedule)},
              {"decay_rate", c.decay_rate},
              {"decay_steps", c.decay_steps}};
}

Status OptimizerFromJson(const json& j, OptimizerConfig* c) {
  if (!j.is_object()) return Status::InvalidArgument("optimizer: expected an object");
  std::string kind = OptimizerName(c->kind), schedule = LrScheduleName(c->schedule);
  VIRGA_RETURN_IF_ERROR(Read(j, "kind", &kind));
  VIRGA_ASSIGN_OR_RETURN(c->kind, ParseOptimizerName(kind));
  VIRGA_RETURN_IF_ERROR(Read(j, "schedule", &schedule));
  VIRGA_ASSIGN_OR_RETURN(c->schedule, ParseLrScheduleName(schedule));
  VIRGA_RETURN_IF_ERROR(Read(j, "learning_rate", &c->learning_rate));
  VIRGA_RETURN_IF_ERROR(Read(j, "l1", &c->l1));
  VIRGA_RETURN_IF_ERROR(Read(j, "l2", &c->l2));
  VIRGA_RETURN_IF_ERROR(Read(j, "momentum", &c->momentum));
  VIRGA_RETURN_IF_ERROR(Read(j, "beta1", &c->beta1));
  VIRGA_RETURN_IF_ERROR(Read(j, "beta2", &c->beta2));
  VIRGA_RETURN_IF_ERROR(Read(j, "epsilon", &c->epsilon));
  VIRGA_RETURN_IF_ERROR(Read(j, "initial_accumulator", &c->initial_accumulator));
  VIRGA_RETURN_IF_ERROR(Read(j, "ftrl_beta", &c->ftrl_beta));
  VIRGA_RETURN_IF_ERROR(Read(j, "clip", &c->clip));
  VIRGA_RETURN_IF_ERROR(Read(j, "decay_rate", &c->decay_rate));
  VIRGA_RETURN_IF_ERROR(Read(j, "decay_steps", &c->decay_steps));
  return c->Validate();
}

}  // namespace virga
