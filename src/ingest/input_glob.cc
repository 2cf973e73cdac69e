#include "ingest/input_glob.h"

#include <fnmatch.h>

#include <string_view>

#include "virga/object_store.h"

namespace virga::ingest_internal {
namespace {

constexpr char kWildcards[] = "*?[";

// Appends the URIs of the objects matching `pattern` (an object URI whose
// key is ref.key) to *out.
Status Expand(const std::string& pattern, const ObjectRef& ref, std::vector<std::string>* out) {
  const std::string root = pattern.substr(0, pattern.size() - ref.key.size());  // "s3://b/"
  const std::string prefix = ref.key.substr(0, ref.key.find_first_of(kWildcards));
  Result<std::vector<ObjectInfo>> listed = ref.store->List(prefix);
  if (!listed.ok()) return listed.status().WithContext("input pattern \"" + pattern + "\"");
  const size_t before = out->size();
  for (const ObjectInfo& o : *listed) {
    if (::fnmatch(ref.key.c_str(), o.key.c_str(), FNM_PATHNAME) == 0) out->push_back(root + o.key);
  }
  if (out->size() == before) {
    return Status::NotFound("input pattern \"" + pattern + "\" matches no object");
  }
  return Status::OK();
}

}  // namespace

Result<std::vector<std::string>> ExpandInputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const std::string& input : inputs) {
    if (!IsObjectUri(input) || input.find_first_of(kWildcards) == std::string::npos) {
      out.push_back(input);
      continue;
    }
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(input));
    if (ref.key.find_first_of(kWildcards) == std::string::npos) {
      out.push_back(input);  // the wildcard is in the bucket or store name
      continue;
    }
    VIRGA_RETURN_IF_ERROR(Expand(input, ref, &out));
  }
  return out;
}

}  // namespace virga::ingest_internal
