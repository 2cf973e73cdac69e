// The files of one local function: its payload in, its stdout and stderr out.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga::backend {

inline constexpr size_t kMaxOutputBytes = size_t{1} << 20;  // stdout kept in FunctionInfo
inline constexpr size_t kErrorTailBytes = 4096;             // end of stderr kept

// Creates or replaces `path` with `contents`, as a new file of mode 0600 (a
// payload holds the job's token).
Status WriteFile(const std::string& path, std::string_view contents);

struct FunctionOutput {
  std::string output;  // first kMaxOutputBytes of stdout
  bool output_truncated = false;
  std::string error_tail;  // last kErrorTailBytes of stderr
};

// Missing or unreadable files read as empty: a function may have closed or
// removed them; its exit status still tells what happened.
FunctionOutput ReadFunctionOutput(const std::string& stdout_path, const std::string& stderr_path);

}  // namespace virga::backend
