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

namespace virga::ps {

void EncodePackedKeys(std::span<const uint64_t> keys, net::PayloadWriter* w) {
  thread_local std::string bytes;
  bytes.resize(keys.size() * 10);
  auto* out = reinterpret_cast<uint8_t*>(bytes.data());
  size_t n = 0;
  uint64_t prev = 0;
  for (uint64_t k : keys) {
    const uint64_t d = k - prev;  // modular: any order, any keys
    prev = k;
    uint64_t z = (d << 1) ^ (0 - (d >> 63));  // zigzag of the signed difference
    while (z >= 0x80) {
      out[n++] = static_cast<uint8_t>(z | 0x80);
      z >>= 7;
    }
    out[n++] = static_cast<uint8_t>(z);
  }
  bytes.resize(n);
  w->U32(static_cast<uint32_t>(keys.size()));
  w->Str(bytes);
}

Status DecodePackedKeys(net::PayloadReader* r, std::vector<uint64_t>* keys, uint32_t max_count) {
  uint32_t count = 0;
  std::string_view bytes;
  VIRGA_RETURN_IF_ERROR(r->U32(&count));
  if (count > max_count)
    return Status::InvalidArgument("packed keys: count " + std::to_string(count) +
                                   " exceeds the limit " + std::to_string(max_count) +
                                   " (at the offset of the count)");
  VIRGA_RETURN_IF_ERROR(r->Str(&bytes, count * 10u));
  keys->resize(count);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t size = bytes.size();
  size_t at = 0;
  uint64_t prev = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t z = 0;
    for (int shift = 0;; shift += 7) {
      if (at == size || shift > 63)
        return Status::InvalidArgument("packed keys: key " + std::to_string(i) + " of " +
                                       std::to_string(count) + " is truncated at offset " +
                                       std::to_string(at) + " of " + std::to_string(size));
      const uint8_t b = p[at++];
      z |= uint64_t{b & 0x7Fu} << shift;
      if (b < 0x80) break;
    }
    prev += (z >> 1) ^ (0 - (z & 1));
    (*keys)[i] = prev;
  }
  if (at != size)
    return Status::InvalidArgument("packed keys: " + std::to_string(size - at) +
                                   " unexpected bytes after " + std::to_string(count) + " keys");
  return Status::OK();
}

}  // namespace virga::ps
