// libFuzzer target: the parameter server's request decoding and dispatch.
// Input: byte 0 = opcode, the rest = payload (copied to an 8-byte aligned
// buffer, as the receive path guarantees). A table, a KV key and a queue
// exist so that well-formed requests reach the deeper paths. Any input must
// give a reply or a close, never a crash, a hang or a sanitizer report.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "ps/service.h"

namespace {

virga::ps::PsService* Service() {
  static virga::ps::PsService* service = [] {
    auto* s = new virga::ps::PsService();
    virga::TableConfig t;
    t.name = "t";
    t.width = 2;
    (void)s->CreateTable(t);
    (void)s->kv().Put("k", std::string(8, '\0'));
    std::vector<std::string> items = {"a", "b"};
    s->queues().Enqueue("q", items);
    return s;
  }();
  return service;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (1 << 20)) return 0;
  std::vector<uint64_t> aligned((size + 7) / 8);
  std::memcpy(aligned.data(), data + 1, size - 1);
  virga::net::FrameHeader h;
  h.opcode = data[0];
  h.payload_len = static_cast<uint32_t>(size - 1);
  virga::Status status;
  std::string reply;
  virga::net::RequestContext ctx;
  Service()->Handle(ctx, h,
                    std::span<const std::byte>(reinterpret_cast<const std::byte*>(aligned.data()),
                                               size - 1),
                    &status, &reply);
  return 0;
}
