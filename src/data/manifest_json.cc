// Manifest <-> JSON (the field list is in docs/object-layout.md). Parsing never
// throws out of here: every problem is a Corruption naming the source and the
// field path, e.g. "manifest datasets/x/manifest.json: field 'train[3].rows':
// expected unsigned integer".
#include <climits>
#include <span>
#include <nlohmann/json.hpp>

#include "virga/dataset.h"

namespace virga {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // keeps fields in the documented order

ojson PartitionsToJson(const std::vector<PartitionInfo>& parts) {
  ojson a = ojson::array();
  for (const PartitionInfo& p : parts) {
    a.push_back({{"key", p.key}, {"rows", p.rows}, {"nnz", p.nnz}, {"bytes", p.bytes}});
  }
  return a;
}

// Reads typed fields of JSON objects. An absent optional field leaves *out
// unchanged (its default); `prefix` is the path of the enclosing object
// ("" or e.g. "train[3].").
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  Status Error(std::string_view path, std::string_view what) const {
    return Status::Corruption("manifest " + std::string(source_) + ": field '" + std::string(path) +
                              "': " + std::string(what));
  }

  Status Get(const json& obj, std::string_view prefix, const char* name, bool required,
             uint64_t* out) const {
    const json* v = nullptr;
    VIRGA_RETURN_IF_ERROR(Find(obj, prefix, name, required, &v));
    if (!v) return Status::OK();
    if (!v->is_number_unsigned()) return Error(Path(prefix, name), "expected unsigned integer");
    *out = v->get<uint64_t>();
    return Status::OK();
  }

  Status Get(const json& obj, std::string_view prefix, const char* name, bool required,
             int* out) const {
    const json* v = nullptr;
    VIRGA_RETURN_IF_ERROR(Find(obj, prefix, name, required, &v));
    if (!v) return Status::OK();
    bool fits = v->is_number_unsigned()  ? v->get<uint64_t>() <= INT_MAX
                : v->is_number_integer() ? v->get<int64_t>() >= INT_MIN
                                         : false;
    if (!fits) return Error(Path(prefix, name), "expected 32-bit integer");
    *out = static_cast<int>(v->get<int64_t>());
    return Status::OK();
  }

  Status Get(const json& obj, std::string_view prefix, const char* name, bool required,
             double* out) const {
    const json* v = nullptr;
    VIRGA_RETURN_IF_ERROR(Find(obj, prefix, name, required, &v));
    if (!v) return Status::OK();
    if (!v->is_number()) return Error(Path(prefix, name), "expected number");
    *out = v->get<double>();
    return Status::OK();
  }

  Status Get(const json& obj, std::string_view prefix, const char* name, bool required,
             std::string* out) const {
    const json* v = nullptr;
    VIRGA_RETURN_IF_ERROR(Find(obj, prefix, name, required, &v));
    if (!v) return Status::OK();
    if (!v->is_string()) return Error(Path(prefix, name), "expected string");
    *out = v->get<std::string>();
    return Status::OK();
  }

  Status Get(const json& obj, std::string_view prefix, const char* name, bool required,
             std::vector<std::string>* out) const {
    const json* v = nullptr;
    VIRGA_RETURN_IF_ERROR(Find(obj, prefix, name, required, &v));
    if (!v) return Status::OK();
    if (!v->is_array()) return Error(Path(prefix, name), "expected array of strings");
    out->clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string()) {
        return Error(Path(prefix, name) + "[" + std::to_string(i) + "]", "expected string");
      }
      out->push_back(e.get<std::string>());
    }
    return Status::OK();
  }

  // The array `name` of objects; *elements are pointers into obj.
  Status Objects(const json& obj, const char* name, bool required,
                 std::vector<const json*>* elements) const {
    const json* v = nullptr;
    elements->clear();
    VIRGA_RETURN_IF_ERROR(Find(obj, "", name, required, &v));
    if (!v) return Status::OK();
    if (!v->is_array()) return Error(name, "expected array");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_object()) return Error(Index(name, i), "expected object");
      elements->push_back(&(*v)[i]);
    }
    return Status::OK();
  }

  static std::string Path(std::string_view prefix, const char* name) {
    return std::string(prefix) + name;
  }
  static std::string Index(const char* name, size_t i) {
    return std::string(name) + "[" + std::to_string(i) + "]";
  }

 private:
  Status Find(const json& obj, std::string_view prefix, const char* name, bool required,
              const json** v) const {
    auto it = obj.find(name);
    if (it == obj.end()) return required ? Error(Path(prefix, name), "missing") : Status::OK();
    *v = &*it;
    return Status::OK();
  }

  std::string_view source_;
};

Status ReadPartitions(const Reader& r, const json& doc, const char* name,
                      std::vector<PartitionInfo>* out) {
  std::vector<const json*> elems;
  VIRGA_RETURN_IF_ERROR(r.Objects(doc, name, /*required=*/true, &elems));
  out->assign(elems.size(), PartitionInfo{});
  for (size_t i = 0; i < elems.size(); ++i) {
    const std::string p = Reader::Index(name, i) + ".";
    PartitionInfo& info = (*out)[i];
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "key", true, &info.key));
    if (info.key.empty()) return r.Error(p + "key", "empty");
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "rows", true, &info.rows));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "nnz", false, &info.nnz));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "bytes", false, &info.bytes));
  }
  return Status::OK();
}

Status ReadLabel(const Reader& r, const json& doc, LabelStat* label) {
  auto it = doc.find("label");
  if (it == doc.end()) return Status::OK();
  if (!it->is_object()) return r.Error("label", "expected object");
  VIRGA_RETURN_IF_ERROR(r.Get(*it, "label.", "count", false, &label->count));
  VIRGA_RETURN_IF_ERROR(r.Get(*it, "label.", "min", false, &label->min));
  VIRGA_RETURN_IF_ERROR(r.Get(*it, "label.", "max", false, &label->max));
  VIRGA_RETURN_IF_ERROR(r.Get(*it, "label.", "positives", false, &label->positives));
  VIRGA_RETURN_IF_ERROR(r.Get(*it, "label.", "kind", false, &label->kind));
  if (label->kind != "binary01" && label->kind != "binary_pm1" && label->kind != "real") {
    return r.Error("label.kind", "expected one of binary01, binary_pm1, real");
  }
  return Status::OK();
}

Status ReadFeatures(const Reader& r, const json& doc, std::vector<FeatureStat>* out) {
  std::vector<const json*> elems;
  VIRGA_RETURN_IF_ERROR(r.Objects(doc, "numeric_features", false, &elems));
  out->assign(elems.size(), FeatureStat{});
  for (size_t i = 0; i < elems.size(); ++i) {
    const std::string p = Reader::Index("numeric_features", i) + ".";
    FeatureStat& f = (*out)[i];
    uint64_t index = 0;
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "index", true, &index));
    if (index > UINT32_MAX) return r.Error(p + "index", "expected unsigned integer < 2^32");
    f.index = static_cast<uint32_t>(index);
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "count", false, &f.count));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "min", false, &f.min));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "max", false, &f.max));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "sum", false, &f.sum));
    VIRGA_RETURN_IF_ERROR(r.Get(*elems[i], p, "sum_sq", false, &f.sum_sq));
  }
  return Status::OK();
}

}  // namespace

std::string ManifestToJson(const Manifest& m, std::string_view stats_key) {
  ojson features = ojson::array();
  const std::span<const FeatureStat> inline_stats =
      stats_key.empty() ? std::span<const FeatureStat>(m.numeric_features) : std::span<const FeatureStat>();
  for (const FeatureStat& f : inline_stats) {
    features.push_back({{"index", f.index},
                        {"count", f.count},
                        {"min", f.min},
                        {"max", f.max},
                        {"sum", f.sum},
                        {"sum_sq", f.sum_sq}});
  }
  ojson doc = {
      {"version", m.version},
      {"name", m.name},
      {"format", m.format},
      {"codec", m.codec},
      {"hash_bits", m.hash_bits},
      {"num_features", m.num_features},
      {"test_fraction", m.test_fraction},
      {"split_seed", m.split_seed},
      {"train_rows", m.train_rows},
      {"test_rows", m.test_rows},
      {"train_nnz", m.train_nnz},
      {"test_nnz", m.test_nnz},
      {"skipped_lines", m.skipped_lines},
      {"input_bytes", m.input_bytes},
      {"sources", m.sources},
      {"derived_from", m.derived_from},
      {"created_at", m.created_at},
      {"label",
       {{"count", m.label.count},
        {"min", m.label.min},
        {"max", m.label.max},
        {"positives", m.label.positives},
        {"kind", m.label.kind}}},
      {"numeric_features", std::move(features)},
      {"numeric_features_key", stats_key},
      {"train", PartitionsToJson(m.train)},
      {"test", PartitionsToJson(m.test)},
  };
  // Invalid UTF-8 in a string (e.g. a source path) is replaced, not thrown.
  return doc.dump(2, ' ', false, ojson::error_handler_t::replace) + "\n";
}

Result<Manifest> ManifestFromJson(std::string_view text, std::string_view source) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return Status::Corruption("manifest " + std::string(source) + ": invalid JSON: " + e.what());
  }
  if (!doc.is_object()) {
    return Status::Corruption("manifest " + std::string(source) + ": expected a JSON object");
  }
  Reader r(source);
  Manifest m;
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "version", true, &m.version));
  if (m.version != 1) {
    return r.Error("version", "unsupported manifest version " + std::to_string(m.version));
  }
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "name", true, &m.name));
  if (!ValidateDatasetName(m.name).ok())
    return r.Error("name", ValidateDatasetName(m.name).message());
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "format", false, &m.format));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "codec", false, &m.codec));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "hash_bits", false, &m.hash_bits));
  if (m.hash_bits < 0 || m.hash_bits > 32) return r.Error("hash_bits", "expected 0..32");
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "num_features", false, &m.num_features));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "test_fraction", false, &m.test_fraction));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "split_seed", false, &m.split_seed));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "train_rows", false, &m.train_rows));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "test_rows", false, &m.test_rows));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "train_nnz", false, &m.train_nnz));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "test_nnz", false, &m.test_nnz));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "skipped_lines", false, &m.skipped_lines));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "input_bytes", false, &m.input_bytes));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "sources", false, &m.sources));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "derived_from", false, &m.derived_from));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "created_at", false, &m.created_at));
  VIRGA_RETURN_IF_ERROR(ReadLabel(r, doc, &m.label));
  VIRGA_RETURN_IF_ERROR(ReadFeatures(r, doc, &m.numeric_features));
  VIRGA_RETURN_IF_ERROR(r.Get(doc, "", "numeric_features_key", false, &m.numeric_features_key));
  VIRGA_RETURN_IF_ERROR(ReadPartitions(r, doc, "train", &m.train));
  VIRGA_RETURN_IF_ERROR(ReadPartitions(r, doc, "test", &m.test));
  return m;
}

}  // namespace virga
