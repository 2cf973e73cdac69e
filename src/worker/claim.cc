// ClaimFunction (control.h): at most one delivery of a function runs.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>

#include "virga/ps_client.h"
#include "virga/worker.h"
#include "worker/control.h"

namespace virga::worker {

// Claims function `id` for this invocation (include/virga/worker.h): false if
// another delivery of the same function holds the claim; it is then counted
// in <job>/duplicates.
Result<bool> ClaimFunction(PsClient* client, std::string_view job, uint64_t id) {
  if (id == 0) return true;  // not launched by a backend
  // The claim's value names this process, not the invocation: a second
  // delivery of an event may carry the same request id as the first.
  const char* invocation = std::getenv("VIRGA_INVOCATION_ID");
  char nonce[20];
  std::snprintf(nonce, sizeof nonce, "%016llx",
                static_cast<unsigned long long>(std::random_device{}()) << 32 ^ std::random_device{}());
  const std::string me = (invocation != nullptr && *invocation != '\0' ? std::string(invocation)
                                                                        : std::string("local")) +
                         "/" + std::to_string(::getpid()) + "/" + nonce;
  const std::string key = FunctionClaimKey(job, id);
  VIRGA_ASSIGN_OR_RETURN(const bool swapped, client->CompareAndSwap(key, 0, me));
  if (swapped) return true;
  std::string holder;
  if (client->Get(key, &holder).ok() && holder == me) return true;  // our own, reply lost
  const float one = 1;
  (void)client->AddFloats(JobDuplicatesKey(job), std::span<const float>(&one, 1));
  return false;
}

}  // namespace virga::worker
