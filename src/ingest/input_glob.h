// ExpandInputs: ingest's input list with the wildcards in object URIs
// expanded, so "s3://bucket/raw/*.gz" names every matching object. Used by
// Ingest and ProfileStages, hence by the CLI and the Python binding alike.
#pragma once

#include <string>
#include <vector>

#include "virga/status.h"

namespace virga::ingest_internal {

// Returns `inputs` with each object URI whose key holds a wildcard ('*', '?'
// or "[...]", as fnmatch; '*' and '?' never match '/') replaced by the URIs of
// the objects whose keys match it, sorted by key. The store is listed from the
// key's prefix before the first wildcard. Local paths, file:// URIs and object
// URIs without wildcards are kept as given. A pattern that matches nothing is
// NotFound naming the pattern; a failed List names it too.
Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs);

}  // namespace virga::ingest_internal
