// LeaseSource: the prefetching iterator's KeySource. It leases the job's
// work items one at a time (only when the iterator has a free buffer), notes
// each lease in the WorkLedger under the partition's sequence number, and
// returns the partition key to fetch. It returns nullopt, ending the
// iterator, when no work has been found for max_idle_ms (StopReason kIdle),
// at the stop time (kLifetime), when <job>/stop appears (kStopped; checked
// about every 200 ms while waiting), or when the servers stay unreachable
// (kError).
//
// Runs on the iterator's fetch threads, one call at a time (the iterator
// never calls its KeySource concurrently), with its own PsClient (clients are
// not thread-safe); Control::RequestStop interrupts its waits.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "virga/ps_client.h"
#include "virga/worker.h"
#include "worker/control.h"
#include "worker/work_ledger.h"

namespace virga::worker {

class LeaseSource {
 public:
  // `name`: the worker's name in the queue's leases.
  // `function_id`: whose kill key (<job>/kill/<id>) stops it, besides the job's stop key.
  LeaseSource(const WorkerPayload& payload, std::unique_ptr<PsClient> client, WorkLedger* ledger,
              Control* control, std::string name, uint64_t function_id = 0);

  // The KeySource.
  std::optional<std::string> Next();

  uint64_t rejected() const { return rejected_.load(); }  // malformed items acked unprocessed
  std::atomic<uint64_t>* faults() { return &faults_; }

 private:
  // Checks the item against the payload; bad items are acked (they could
  // never be processed) and logged.
  std::optional<WorkItem> Accept(const QueueLease& lease);

  const WorkerPayload& payload_;
  const std::unique_ptr<PsClient> client_;
  WorkLedger* const ledger_;
  Control* const control_;
  const std::string name_;
  const std::string stop_key_, kill_key_;
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> faults_{0};
};

}  // namespace virga::worker
