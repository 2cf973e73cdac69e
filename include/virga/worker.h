// The worker runtime: one stateless training function.
//
// Everything a worker needs is in its payload (WorkerPayload, carried as JSON).
// It leases work items from the job's queue on the parameter server, streams
// their partitions from the object store through the prefetching iterator,
// and loops over minibatches: pull the weights of the minibatch's distinct
// features, compute the gradient, push it; the next minibatch's pull travels
// while the current gradient is computed. It acks an item once every push of
// it has been applied, and before its lifetime ends it stops cleanly: it
// releases the lease it cannot finish and exits, so a fresh function takes
// over. A worker that is killed loses nothing: its lease expires and the item
// is processed again (at-least-once).
//
// Work items (enqueued by the scheduler, oldest first, all epochs up front):
//   "<epoch> <item index> <partition key> <row begin> <row end>"
// rows [begin, end) of one partition object; the item index is unique within
// the job, 0 .. epochs * items_per_epoch - 1.
//
// Control keys on the server (KV), written by the scheduler or the backend:
//   <job>/stop        present: every worker stops now (release the lease, exit 0)
//   <job>/kill/<id>   present: function <id> stops now (end_reason "killed"); the way
//                     a cloud backend kills, since it cannot send a signal
// and written by workers:
//   <job>/claim/<id>  the first invocation of function <id> claims it (compare-and-swap
//                     from absent, value: its invocation id, pid and a random nonce: a
//                     second delivery may carry the same invocation id). A second delivery of the
//                     same function (cloud functions run at least once) finds the claim,
//                     adds 1 to <job>/duplicates and exits at once (end_reason
//                     "duplicate") without training.
//   <job>/acks      float vector (AddFloats) of epochs * items_per_epoch elements:
//                   element <item index> += 1 once the item's pushes are all applied,
//                   BEFORE its queue Ack (so an item counts as processed even if the
//                   worker dies before acking; it may then count 2: at-least-once)
//   <job>/fn/<id>   the worker's live stats (WorkerResult JSON), refreshed about once a second
//                   while it trains
//   <job>/hb/<id>   the worker's heartbeat: a counter rewritten every 500 ms by a thread of its
//                   own from its start to its end, whatever its training loop does (the
//                   scheduler replaces a function whose heartbeat stops: a hung worker)
// and written by the job's driver:
//   <job>/driver    the driver's lease: rewritten every 250 ms while the driver lives. A worker
//                   whose payload has driver_timeout_ms > 0 stops (end_reason "orphaned") once
//                   this value has not changed for that long, so no function outlives its driver
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "virga/optimizer.h"
#include "virga/status.h"

namespace virga {

struct WorkerPayload {
  std::string job;                   // job id; prefix of its queue and control keys
  std::vector<std::string> servers;  // "host:port" of the parameter servers
  std::string token;                 // their shared secret
  std::string tls_ca;                // PEM text of the CA their TLS certificates chain to ("": plain TCP)
  std::string store;                 // object store URI of the dataset
  std::string dataset;               // dataset name (for messages)
  std::string table;                 // model table on the servers
  std::string queue;                 // the job's work queue
  std::string model = "lr";          // lr | svm (model.h)
  uint32_t minibatch = 200;          // rows per gradient step
  int32_t staleness = -1;            // -1 asynchronous; s >= 0 bounded staleness (0 = synchronous)
  uint32_t workers = 1;              // workers the scheduler keeps alive (for the staleness clock)
  // When a pipelined pull is sent: "auto" (measured, see
  // src/worker/send_schedule.h), "early" or "with_push".
  std::string send_schedule = "auto";
  // Local steps (docs/training.md): minibatches a worker trains on its own
  // replica of a round's rows, applying `optimizer` itself, between one state
  // pull and one delta push. 1: a pull and a push per minibatch, the server
  // applying the optimizer. > 1 needs staleness -1.
  uint32_t local_steps = 1;
  OptimizerConfig optimizer;         // the table's optimizer (used by local steps)
  uint32_t epochs = 1;               // epochs enqueued
  uint32_t items = 0;                // total items enqueued (size of the <job>/acks vector;
                                     // 0: no acks vector is written)
  uint32_t lease_ms = 10'000;        // lease duration of a work item
  uint32_t lifetime_ms = 0;          // 0: from $VIRGA_FUNCTION_LIFETIME_MS, else none
  uint32_t stop_margin_ms = 0;       // stop this long before the lifetime ends; 0 = auto (10%, <= 2 s)
  uint32_t max_idle_ms = 2'000;      // exit after finding no work for this long
  uint32_t max_fault_ms = 60'000;    // give up ("error: ...") after the servers fail this long
                                     // without a success (a lifetime ends the retries sooner)
  uint32_t driver_timeout_ms = 0;    // stop ("orphaned") when <job>/driver is unchanged this
                                     // long; 0: the driver is not watched
  uint32_t spin_us = 0;              // busy-poll for server replies this long (PsClientOptions::spin):
                                     // lower latency on a dedicated core, wasted CPU on a shared one
};

// The names of the control keys above, in one place.
inline std::string JobStopKey(std::string_view job) { return std::string(job) + "/stop"; }
inline std::string FunctionKillKey(std::string_view job, uint64_t id) {
  return std::string(job) + "/kill/" + std::to_string(id);
}
inline std::string FunctionClaimKey(std::string_view job, uint64_t id) {
  return std::string(job) + "/claim/" + std::to_string(id);
}
inline std::string FunctionStatsKey(std::string_view job, uint64_t id) {
  return std::string(job) + "/fn/" + std::to_string(id);
}
inline std::string FunctionHeartbeatKey(std::string_view job, uint64_t id) {
  return std::string(job) + "/hb/" + std::to_string(id);
}
inline std::string JobDriverKey(std::string_view job) { return std::string(job) + "/driver"; }
inline std::string JobDuplicatesKey(std::string_view job) { return std::string(job) + "/duplicates"; }

std::string PayloadToJson(const WorkerPayload& payload);
// InvalidArgument naming the field ("payload: field 'minibatch': ..."), also
// for unknown fields and out-of-range values (minibatch, workers, epochs,
// lease_ms >= 1; staleness >= -1; model a known name; job, servers, store,
// table, queue present and non-empty).
Result<WorkerPayload> PayloadFromJson(std::string_view json);

// Per-iteration timing. One iteration = one minibatch, from the moment its
// data is asked for until its push is sent. With the pipeline (the next
// pull travels during the current compute) an iteration is one turn of the
// worker's loop, so iterations * p50 approximates the training time and the
// four means add up to about the mean iteration (control work such as the
// periodic stop-key check is in the total only).
struct IterationTimes {
  uint64_t iterations = 0;
  double data_wait_us = 0;  // mean per iteration: waiting for the prefetcher
  double pull_us = 0;       // mean: waiting for the pull reply (after overlap), incl.
                            // bounded-staleness waits
  double compute_us = 0;    // mean: gradient computation (incl. key dedup)
  double push_us = 0;       // mean: sending the push; at an item's end also waiting for
                            // its pushes' replies and the ack
  double p50_us = 0;        // whole iteration
  double p99_us = 0;
  // Log-scale histogram of whole-iteration times, so results of many workers
  // merge exactly: bucket i counts iterations in [2^(i/8), 2^((i+1)/8)) ns.
  std::vector<uint64_t> histogram;
};

struct WorkerResult {
  uint64_t function_id = 0;
  std::string end_reason;          // "done" | "lifetime" | "stopped" | "killed" | "duplicate" |
                                   // "error: ..."
  uint64_t samples = 0;            // rows trained on
  uint64_t items_acked = 0;
  uint64_t items_released = 0;
  uint64_t items_lost = 0;         // acks refused because the lease had expired (item redone elsewhere)
  uint64_t items_rejected = 0;     // malformed items (bad text, epoch or index): acked unprocessed
  double train_loss = 0;           // mean loss of the rows trained on
  // Per epoch (payload.epochs elements): rows trained on and their summed
  // loss, so results of many workers add up to each epoch's training loss.
  std::vector<uint64_t> epoch_samples;
  std::vector<double> epoch_loss;
  uint64_t stale_waits = 0;        // iterations that waited for slower workers (staleness >= 0)
  uint64_t stale_timeouts = 0;     // of those, waits abandoned after 1 s (the others had no work)
  uint64_t server_faults = 0;      // failed server calls that were retried
  // Pipelined pulls sent at once / held and sent with the push (the send
  // schedule the worker measured to be faster where it runs).
  uint64_t pulls_early = 0, pulls_with_push = 0;
  // Bytes the training connection wrote to and read from the servers (pulls,
  // pushes, acks; frames and headers), for the bytes per sample of a job.
  uint64_t bytes_sent = 0, bytes_received = 0;
  double wall_seconds = 0;
  uint64_t peak_rss_bytes = 0;     // the process's peak resident memory at the end
  IterationTimes times;
};

std::string ResultToJson(const WorkerResult& result);
Result<WorkerResult> ResultFromJson(std::string_view json);

// Runs a worker to its end. Returns an error only for faults it cannot work
// around (bad payload, unknown dataset, missing table, model mismatch); a
// server that goes away is retried until the lifetime ends (or
// max_fault_ms). Faults met while training (an unreadable partition, servers
// gone for good) end the run with end_reason "error: ..." after its leases
// are released. Identity and limits come from the environment
// (VIRGA_FUNCTION_ID, VIRGA_FUNCTION_LIFETIME_MS; see backend.h;
// VIRGA_INVOCATION_ID, when set, is the value of its claim).
Result<WorkerResult> RunWorker(const WorkerPayload& payload);

}  // namespace virga
