#include "virga/backend.h"

namespace virga {

const char* FunctionStateName(FunctionState state) {
  switch (state) {
    case FunctionState::kStarting:
      return "starting";
    case FunctionState::kRunning:
      return "running";
    case FunctionState::kSucceeded:
      return "succeeded";
    case FunctionState::kFailed:
      return "failed";
    case FunctionState::kKilled:
      return "killed";
    case FunctionState::kTimedOut:
      return "timed_out";
    case FunctionState::kOutOfMemory:
      return "out_of_memory";
  }
  return "unknown";
}

bool IsTerminal(FunctionState state) {
  return state != FunctionState::kStarting && state != FunctionState::kRunning;
}

}  // namespace virga
