// Key-value and work-queue requests of PsService.
#include <chrono>

#include "ps/protocol.h"
#include "ps/service.h"

namespace virga::ps {

using net::PayloadReader;
using net::PayloadWriter;

Status PsService::DoKv(uint8_t op, PayloadReader& in, std::string* reply) {
  PayloadWriter out(reply);
  std::string_view key;
  if (static_cast<Op>(op) != Op::kKvMultiGet) VIRGA_RETURN_IF_ERROR(in.Str(&key, kMaxNameBytes));
  switch (static_cast<Op>(op)) {
    case Op::kKvPut: {
      std::string_view value;
      VIRGA_RETURN_IF_ERROR(in.Str(&value, kMaxValueBytes));
      uint64_t version = 0;
      VIRGA_RETURN_IF_ERROR(kv_.Put(key, value, &version));
      out.U64(version);
      return Status::OK();
    }
    case Op::kKvGet: {
      std::string value;
      uint64_t version = 0;
      VIRGA_RETURN_IF_ERROR(kv_.Get(key, &value, &version));
      out.U64(version);
      out.Str(value);
      return Status::OK();
    }
    case Op::kKvMultiGet: {
      uint32_t n = 0;
      VIRGA_RETURN_IF_ERROR(in.U32(&n));
      if (n > kMaxBatch) return Status::InvalidArgument("truncated: multi_get of too many keys");
      std::vector<std::string> keys;
      for (uint32_t i = 0; i < n; ++i) {
        VIRGA_RETURN_IF_ERROR(in.Str(&key, kMaxNameBytes));
        keys.emplace_back(key);
      }
      for (const auto& v : kv_.MultiGet(keys)) {
        out.U8(v.has_value());
        out.Str(v ? *v : std::string_view());
      }
      return Status::OK();
    }
    case Op::kKvDelete:
      out.U8(kv_.Delete(key));
      return Status::OK();
    case Op::kKvCas: {
      uint64_t expected = 0, current = 0;
      std::string_view value;
      VIRGA_RETURN_IF_ERROR(in.U64(&expected));
      VIRGA_RETURN_IF_ERROR(in.Str(&value, kMaxValueBytes));
      VIRGA_ASSIGN_OR_RETURN(bool swapped, kv_.CompareAndSwap(key, expected, value, &current));
      out.U8(swapped);
      out.U64(current);
      return Status::OK();
    }
    case Op::kKvAddFloats: {
      std::span<const float> delta;
      VIRGA_RETURN_IF_ERROR(in.Array(&delta, kMaxValueBytes / 4));
      std::vector<float> result;
      VIRGA_RETURN_IF_ERROR(kv_.AddFloats(key, delta, &result));
      out.Array(std::span<const float>(result));
      return Status::OK();
    }
    default:
      return Status::InvalidArgument("unknown opcode " + std::to_string(op));
  }
}

Status PsService::DoQueue(uint8_t op, PayloadReader& in, std::string* reply) {
  PayloadWriter out(reply);
  std::string_view queue;
  VIRGA_RETURN_IF_ERROR(in.Str(&queue, kMaxNameBytes));
  switch (static_cast<Op>(op)) {
    case Op::kQueueEnqueue: {
      uint32_t n = 0;
      VIRGA_RETURN_IF_ERROR(in.U32(&n));
      if (n > kMaxBatch) return Status::InvalidArgument("truncated: enqueue of too many items");
      std::vector<std::string> items;
      for (uint32_t i = 0; i < n; ++i) {
        std::string_view p;
        VIRGA_RETURN_IF_ERROR(in.Str(&p, kMaxValueBytes));
        items.emplace_back(p);
      }
      std::vector<uint64_t> ids = queues_.Enqueue(queue, items);
      out.Array(std::span<const uint64_t>(ids));
      return Status::OK();
    }
    case Op::kQueueLease: {
      std::string_view worker;
      uint32_t timeout_ms = 0;
      VIRGA_RETURN_IF_ERROR(in.Str(&worker, kMaxNameBytes));
      VIRGA_RETURN_IF_ERROR(in.U32(&timeout_ms));
      auto item = queues_.Lease(queue, worker, std::chrono::milliseconds(timeout_ms));
      out.U8(item.has_value());
      out.U64(item ? item->lease_id : 0);
      out.U64(item ? item->item_id : 0);
      out.U32(item ? item->attempt : 0);
      out.Str(item ? std::string_view(item->payload) : std::string_view());
      return Status::OK();
    }
    case Op::kQueueAck:
    case Op::kQueueRelease: {
      uint64_t lease = 0;
      VIRGA_RETURN_IF_ERROR(in.U64(&lease));
      return static_cast<Op>(op) == Op::kQueueAck ? queues_.Ack(queue, lease)
                                                   : queues_.Release(queue, lease);
    }
    case Op::kQueueRenew: {
      uint64_t lease = 0;
      uint32_t timeout_ms = 0;
      VIRGA_RETURN_IF_ERROR(in.U64(&lease));
      VIRGA_RETURN_IF_ERROR(in.U32(&timeout_ms));
      return queues_.Renew(queue, lease, std::chrono::milliseconds(timeout_ms));
    }
    case Op::kQueueStats: {
      QueueStats s = queues_.Stats(queue);
      for (uint64_t v : {s.pending, s.leased, s.acked, s.expired, s.enqueued}) out.U64(v);
      return Status::OK();
    }
    case Op::kQueueDrop:
      queues_.Drop(queue);
      return Status::OK();
    default:
      return Status::InvalidArgument("unknown opcode " + std::to_string(op));
  }
}

}  // namespace virga::ps
