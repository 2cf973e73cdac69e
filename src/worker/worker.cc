// RunWorker: sets a worker up (payload, time budget, store, servers, table
// check), runs the Trainer over a PrefetchIterator fed by a LeaseSource, and
// winds down: leases not finished are released, the final stats published.
#include "virga/worker.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "virga/dataset.h"
#include "virga/object_store.h"
#include "virga/prefetch_iterator.h"
#include "virga/ps_client.h"
#include "worker/heartbeat.h"
#include "worker/lease_source.h"
#include "worker/trainer.h"

namespace virga {
namespace {

using worker::Clock;
using worker::Control;
using worker::StopReason;

uint64_t EnvNumber(const char* name) {
  const char* v = std::getenv(name);
  uint64_t x = 0;
  if (v == nullptr) return 0;
  auto [p, ec] = std::from_chars(v, v + std::strlen(v), x);
  return ec == std::errc() && *p == '\0' ? x : 0;
}

// When to wind down: lifetime minus a margin (10% of it, at most 2 s, unless given).
Clock::time_point StopTime(const WorkerPayload& p, Clock::time_point start) {
  uint64_t lifetime = p.lifetime_ms ? p.lifetime_ms : EnvNumber("VIRGA_FUNCTION_LIFETIME_MS");
  if (lifetime == 0) return Clock::time_point::max();
  const uint64_t margin = p.stop_margin_ms ? p.stop_margin_ms : std::min<uint64_t>(lifetime / 10, 2000);
  return start + std::chrono::milliseconds(lifetime > margin ? lifetime - margin : 0);
}

Result<std::unique_ptr<PsClient>> ConnectWithRetry(
    const WorkerPayload& p, Control* control, std::atomic<uint64_t>* faults,
    std::chrono::milliseconds call_timeout = PsClientOptions{}.call_timeout) {
  PsClientOptions o;
  o.call_timeout = call_timeout;
  o.servers = p.servers;
  o.token = p.token;
  o.tls_ca_pem = p.tls_ca;
  o.spin = std::chrono::microseconds(p.spin_us);
  std::unique_ptr<PsClient> client;
  Status s = control->Retry(
      [&] {
        auto c = PsClient::Connect(o);
        if (c.ok()) client = std::move(c).value();
        return c.status();
      },
      faults);
  if (!s.ok()) return s.WithContext("connecting to the parameter servers");
  return client;
}

// The width of the job's table (ServerStats lists tables): the model's
// shape (rank, classes) follows from it.
Result<uint32_t> TableWidth(PsClient* client, const WorkerPayload& p, Control* control,
                            std::atomic<uint64_t>* faults) {
  std::string stats;
  VIRGA_RETURN_IF_ERROR(control->Retry(
      [&] {
        auto r = client->ServerStats(0);
        if (r.ok()) stats = std::move(r).value();
        return r.status();
      },
      faults));
  const auto j = nlohmann::json::parse(stats, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("tables") || !j["tables"].is_array())
    return Status::Corruption("server stats: no table list");
  for (const auto& t : j["tables"]) {
    if (!t.is_object() || t.value("name", "") != p.table) continue;
    const uint64_t width = t.value("width", uint64_t{0});
    if (width == 0 || width > UINT32_MAX) {
      return Status::Corruption("table '" + p.table + "' has width " + std::to_string(width));
    }
    return static_cast<uint32_t>(width);
  }
  return Status::NotFound("table '" + p.table + "' not found on the parameter servers");
}

// Gives back every lease still held (a few quick tries: the worker is
// stopping). Returns how many were released.
uint64_t ReleaseAll(PsClient* client, const WorkerPayload& p, worker::WorkLedger* ledger) {
  uint64_t released = 0;
  for (const worker::LeasedWork& w : ledger->TakeAll()) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      Status s = client->Release(p.queue, w.lease_id);
      if (s.ok()) ++released;
      if (s.ok() || !worker::IsTransient(s)) break;  // NotFound: it expired already
      std::this_thread::sleep_for(std::chrono::milliseconds(20 << attempt));
    }
  }
  return released;
}

uint64_t PeakRssBytes() {
  struct rusage ru {};
  return ::getrusage(RUSAGE_SELF, &ru) == 0 ? static_cast<uint64_t>(ru.ru_maxrss) * 1024 : 0;
}

std::string EndReason(StopReason why, const std::string& error) {
  switch (why) {
    case StopReason::kIdle:
    case StopReason::kNone:
      return "done";
    case StopReason::kLifetime:
      return "lifetime";
    case StopReason::kStopped:
      return "stopped";
    case StopReason::kKilled:
      return "killed";
    case StopReason::kOrphaned:
      return "orphaned";
    case StopReason::kError:
      break;
  }
  return "error: " + error;
}

}  // namespace

Result<WorkerResult> RunWorker(const WorkerPayload& payload_in) {
  const Clock::time_point start = Clock::now();
  // The JSON round trip applies the payload's validation to callers that
  // built the struct themselves.
  VIRGA_ASSIGN_OR_RETURN(const WorkerPayload p, PayloadFromJson(PayloadToJson(payload_in)));
  VIRGA_ASSIGN_OR_RETURN(const ModelKind kind, ParseModelName(p.model));
  Control control(StopTime(p, start), std::chrono::milliseconds(p.max_fault_ms));
  std::atomic<uint64_t> faults{0};

  WorkerResult result;
  result.function_id = EnvNumber("VIRGA_FUNCTION_ID");
  VIRGA_ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> store, ObjectStore::Open(p.store));
  if (!p.dataset.empty()) VIRGA_RETURN_IF_ERROR(ReadManifest(*store, p.dataset).status());
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<PsClient> client, ConnectWithRetry(p, &control, &faults));
  VIRGA_ASSIGN_OR_RETURN(const bool first, worker::ClaimFunction(client.get(), p.job, result.function_id));
  if (!first) {
    result.end_reason = "duplicate";  // another delivery of this function runs it
    result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  }
  VIRGA_ASSIGN_OR_RETURN(const uint32_t width, TableWidth(client.get(), p, &control, &faults));
  Result<std::unique_ptr<Model>> made = MakeModel(kind, width);
  if (!made.ok()) return made.status().WithContext("table '" + p.table + "'");
  const std::unique_ptr<Model> model = std::move(made).value();
  // Short calls: a beat that waits long is no beat.
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<PsClient> beat_client,
                         ConnectWithRetry(p, &control, &faults, std::chrono::milliseconds(2000)));
  worker::Heartbeat heartbeat(p, std::move(beat_client), &control, result.function_id);
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<PsClient> lease_client,
                         ConnectWithRetry(p, &control, &faults));

  worker::WorkLedger ledger;
  const std::string name = "fn-" + std::to_string(result.function_id) + "-" + std::to_string(::getpid());
  worker::LeaseSource source(p, std::move(lease_client), &ledger, &control, name,
                            result.function_id);
  worker::Trainer trainer(p, *model, client.get(), &control, &ledger, &faults, result.function_id);
  auto snapshot = [&](std::string end_reason) {
    WorkerResult r = result;
    trainer.Fill(&r);
    r.end_reason = std::move(end_reason);
    r.items_rejected = source.rejected();
    r.server_faults = faults.load() + source.faults()->load() + heartbeat.faults();
    r.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.peak_rss_bytes = PeakRssBytes();
    r.bytes_sent = client->bytes_sent();
    r.bytes_received = client->bytes_received();
    return r;
  };
  trainer.set_live_stats([&] { return ResultToJson(snapshot("running")); });

  StopReason why;
  {
    PrefetchOptions po;
    po.minibatch_rows = 0;  // whole partitions; the trainer slices items into minibatches
    po.keep_previous = true;  // the trainer starts the next item while it finishes one
    // The other fields keep their defaults: fetches_in_flight GETs at once hide the store's
    // latency, so the item being finished, the one being trained on + fetches_in_flight more
    // (leased as they are fetched) are held.
    PrefetchIterator it(store, [&source] { return source.Next(); }, po);
    why = trainer.Run(&it);
    control.RequestStop(why);  // wakes the lease thread if it is waiting for work
    it.Stop();
  }  // joins the lease thread: no lease is taken after this
  const uint64_t released = ReleaseAll(client.get(), p, &ledger);

  result = snapshot(EndReason(why, trainer.error()));
  result.items_released += released;
  (void)client->Put(FunctionStatsKey(p.job, result.function_id), ResultToJson(result));
  return result;
}

}  // namespace virga
