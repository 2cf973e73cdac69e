#include "ps/protocol.h"

namespace virga::ps {

void EncodeTableConfig(const TableConfig& c, net::PayloadWriter* w) {
  w->Str(c.name);
  w->U8(static_cast<uint8_t>(c.kind));
  w->U32(c.width);
  w->U64(c.dense_rows);
  w->U8(static_cast<uint8_t>(c.init));
  w->F32(c.init_scale);
  w->U64(c.seed);
  const OptimizerConfig& o = c.optimizer;
  w->U8(static_cast<uint8_t>(o.kind));
  for (float f : {o.learning_rate, o.l1, o.l2, o.momentum, o.beta1, o.beta2, o.epsilon,
                  o.initial_accumulator, o.ftrl_beta, o.clip, o.decay_rate}) {
    w->F32(f);
  }
  w->U8(static_cast<uint8_t>(o.schedule));
  w->U64(o.decay_steps);
}

Status DecodeTableConfig(net::PayloadReader* r, TableConfig* c) {
  std::string_view name;
  uint8_t kind = 0, init = 0, opt = 0, schedule = 0;
  VIRGA_RETURN_IF_ERROR(r->Str(&name, kMaxNameBytes));
  c->name = std::string(name);
  VIRGA_RETURN_IF_ERROR(r->U8(&kind));
  VIRGA_RETURN_IF_ERROR(r->U32(&c->width));
  VIRGA_RETURN_IF_ERROR(r->U64(&c->dense_rows));
  VIRGA_RETURN_IF_ERROR(r->U8(&init));
  VIRGA_RETURN_IF_ERROR(r->F32(&c->init_scale));
  VIRGA_RETURN_IF_ERROR(r->U64(&c->seed));
  OptimizerConfig& o = c->optimizer;
  VIRGA_RETURN_IF_ERROR(r->U8(&opt));
  for (float* f : {&o.learning_rate, &o.l1, &o.l2, &o.momentum, &o.beta1, &o.beta2, &o.epsilon,
                   &o.initial_accumulator, &o.ftrl_beta, &o.clip, &o.decay_rate}) {
    VIRGA_RETURN_IF_ERROR(r->F32(f));
  }
  VIRGA_RETURN_IF_ERROR(r->U8(&schedule));
  VIRGA_RETURN_IF_ERROR(r->U64(&o.decay_steps));
  if (kind > 1) return Status::InvalidArgument("table config: unknown kind " + std::to_string(kind));
  if (init > 2) return Status::InvalidArgument("table config: unknown init " + std::to_string(init));
  if (opt > 5) return Status::InvalidArgument("table config: unknown optimizer " + std::to_string(opt));
  if (schedule > 3)
    return Status::InvalidArgument("table config: unknown schedule " + std::to_string(schedule));
  c->kind = static_cast<TableKind>(kind);
  c->init = static_cast<InitKind>(init);
  o.kind = static_cast<OptimizerKind>(opt);
  o.schedule = static_cast<LrSchedule>(schedule);
  return c->Validate();
}

}  // namespace virga::ps
