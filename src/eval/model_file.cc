#include "virga/model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/coding.h"
#include "virga/object_store.h"

namespace virga {
namespace {

static_assert(std::endian::native == std::endian::little, "model files are little-endian");

using nlohmann::json;
constexpr std::string_view kMagic(kModelFileMagic, 8);
constexpr size_t kPreamble = 12;  // magic + u32 header length
constexpr uint32_t kMaxWidth = 65536;

Status Bad(std::string_view source, const std::string& what) {
  return Status::Corruption("model file '" + std::string(source) + "': " + what);
}
Status BadField(std::string_view source, const std::string& what) {
  return Status::InvalidArgument("model file '" + std::string(source) + "': " + what);
}

std::string HeaderJson(const ModelData& m, json training) {
  nlohmann::ordered_json h;
  h["format"] = "virga-model";
  h["version"] = kModelFileVersion;
  h["model"] = ModelName(m.header.model);
  h["width"] = m.header.width;
  h["rows"] = m.keys.size();
  h["dataset"] = m.header.dataset;
  h["num_features"] = m.header.num_features;
  h["hash_bits"] = m.header.hash_bits;
  h["training"] = std::move(training);
  h["created_at"] = m.header.created_at;
  return h.dump();
}

// Bytes a file with this header needs, or 0 on overflow.
uint64_t ExpectedSize(uint64_t header_len, uint64_t rows, uint64_t width) {
  const uint64_t row_bytes = 8 + 4 * width;
  if (rows > (UINT64_MAX - kPreamble - header_len - 8) / row_bytes) return 0;
  return kPreamble + header_len + rows * row_bytes + 8;
}

// Reads a field of an expected JSON type, naming it when absent or mistyped.
template <typename T>
Status Field(const json& h, const char* name, json::value_t type, std::string_view source,
             T* out) {
  auto it = h.find(name);
  const bool unsigned_ok = type == json::value_t::number_integer &&
                           it != h.end() && it->type() == json::value_t::number_unsigned;
  if (it == h.end()) return BadField(source, std::string("header field '") + name + "' is missing");
  if (it->type() != type && !unsigned_ok)
    return BadField(source, std::string("header field '") + name + "' has type " +
                                it->type_name());
  *out = it->get<T>();
  return Status::OK();
}

Status ParseHeader(std::string_view text, std::string_view source, ModelFileHeader* hd,
                   uint64_t* rows) {
  json h = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (h.is_discarded() || !h.is_object()) return Bad(source, "header is not a JSON object");
  std::string format;
  VIRGA_RETURN_IF_ERROR(Field(h, "format", json::value_t::string, source, &format));
  if (format != "virga-model")
    return BadField(source, "header field 'format' is '" + format + "', expected 'virga-model'");
  int64_t version = 0;
  VIRGA_RETURN_IF_ERROR(Field(h, "version", json::value_t::number_integer, source, &version));
  if (version != kModelFileVersion)
    return BadField(source, "unsupported version " + std::to_string(version) +
                                " (this build reads version " +
                                std::to_string(kModelFileVersion) + ")");
  hd->version = static_cast<int>(version);
  std::string model;
  VIRGA_RETURN_IF_ERROR(Field(h, "model", json::value_t::string, source, &model));
  auto kind = ParseModelName(model);
  if (!kind.ok()) return BadField(source, "header field 'model': " + kind.status().message());
  hd->model = *kind;
  int64_t width = 0, hash_bits = 0;
  VIRGA_RETURN_IF_ERROR(Field(h, "width", json::value_t::number_integer, source, &width));
  if (width < 1 || width > kMaxWidth)
    return BadField(source, "header field 'width' is " + std::to_string(width) +
                                ", expected 1.." + std::to_string(kMaxWidth));
  hd->width = static_cast<uint32_t>(width);
  VIRGA_RETURN_IF_ERROR(Field(h, "rows", json::value_t::number_unsigned, source, rows));
  VIRGA_RETURN_IF_ERROR(Field(h, "dataset", json::value_t::string, source, &hd->dataset));
  VIRGA_RETURN_IF_ERROR(
      Field(h, "num_features", json::value_t::number_unsigned, source, &hd->num_features));
  VIRGA_RETURN_IF_ERROR(Field(h, "hash_bits", json::value_t::number_integer, source, &hash_bits));
  if (hash_bits < 0 || hash_bits > 64)
    return BadField(source, "header field 'hash_bits' is " + std::to_string(hash_bits));
  hd->hash_bits = static_cast<int>(hash_bits);
  auto training = h.find("training");
  if (training == h.end() || !training->is_object())
    return BadField(source, "header field 'training' is missing or not an object");
  hd->training = training->dump();
  VIRGA_RETURN_IF_ERROR(Field(h, "created_at", json::value_t::string, source, &hd->created_at));
  return Status::OK();
}

// Why a checksum failed, when the header tells: the file may be truncated.
std::string TruncationHint(std::string_view bytes, uint32_t header_len) {
  ModelFileHeader hd;
  uint64_t rows = 0;
  if (!ParseHeader(bytes.substr(kPreamble, header_len), "", &hd, &rows).ok()) return "";
  const uint64_t want = ExpectedSize(header_len, rows, hd.width);
  if (want == 0 || bytes.size() >= want) return "";
  return "; the file is truncated: " + std::to_string(bytes.size()) + " of " +
         std::to_string(want) + " bytes";
}

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

bool IsModelUri(std::string_view location) { return location.find("://") != std::string_view::npos; }

std::span<const float> ModelData::Find(uint64_t key) const {
  auto it = std::lower_bound(keys.begin(), keys.end(), key);
  if (it == keys.end() || *it != key) return {};
  return std::span<const float>(weights).subspan((it - keys.begin()) * header.width,
                                                 header.width);
}

void ModelData::Gather(std::span<const uint64_t> want, std::span<float> out) const {
  const size_t w = header.width;
  size_t j = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    while (j < keys.size() && keys[j] < want[i]) ++j;
    float* dst = out.data() + i * w;
    if (j < keys.size() && keys[j] == want[i]) {
      std::copy_n(weights.data() + j * w, w, dst);
    } else {
      std::fill_n(dst, w, 0.0f);
    }
  }
}

Result<ModelData> ModelFromRows(ModelFileHeader header,
                                std::span<const std::pair<uint64_t, std::vector<float>>> rows) {
  ModelData m;
  m.header = std::move(header);
  m.keys.reserve(rows.size());
  m.weights.reserve(rows.size() * m.header.width);
  for (const auto& [key, w] : rows) {
    if (w.size() != m.header.width)
      return Status::InvalidArgument("key " + std::to_string(key) + " has " +
                                     std::to_string(w.size()) + " floats, expected width " +
                                     std::to_string(m.header.width));
    if (!m.keys.empty() && key <= m.keys.back())
      return Status::InvalidArgument("keys are not strictly ascending at key " +
                                     std::to_string(key));
    m.keys.push_back(key);
    m.weights.insert(m.weights.end(), w.begin(), w.end());
  }
  return m;
}

Result<std::string> EncodeModel(const ModelData& m) {
  const ModelFileHeader& hd = m.header;
  if (hd.width < 1 || hd.width > kMaxWidth)
    return Status::InvalidArgument("model width " + std::to_string(hd.width) + " is not in 1.." +
                                   std::to_string(kMaxWidth));
  if (m.weights.size() != m.keys.size() * hd.width)
    return Status::InvalidArgument("model has " + std::to_string(m.weights.size()) +
                                   " weights for " + std::to_string(m.keys.size()) +
                                   " keys of width " + std::to_string(hd.width));
  for (size_t i = 1; i < m.keys.size(); ++i)
    if (m.keys[i] <= m.keys[i - 1])
      return Status::InvalidArgument("model keys are not strictly ascending at key " +
                                     std::to_string(m.keys[i]));
  if (hd.hash_bits < 0 || hd.hash_bits > 64)
    return Status::InvalidArgument("hash_bits " + std::to_string(hd.hash_bits) + " not in 0..64");
  json training = json::parse(hd.training.empty() ? "{}" : hd.training, nullptr, false);
  if (training.is_discarded() || !training.is_object())
    return Status::InvalidArgument("model training info is not a JSON object: " + hd.training);

  const std::string header = HeaderJson(m, std::move(training));
  if (header.size() > kMaxModelHeaderBytes)
    return Status::InvalidArgument("model header is " + std::to_string(header.size()) +
                                   " bytes, more than " + std::to_string(kMaxModelHeaderBytes));
  std::string out;
  out.reserve(ExpectedSize(header.size(), m.keys.size(), hd.width));
  out.append(kMagic);
  coding::PutU32(&out, static_cast<uint32_t>(header.size()));
  out.append(header);
  for (size_t i = 0; i < m.keys.size(); ++i) {
    coding::PutU64(&out, m.keys[i]);
    out.append(reinterpret_cast<const char*>(m.weights.data() + i * hd.width), 4 * hd.width);
  }
  coding::PutU64(&out, XXH3_64bits(out.data(), out.size()));
  return out;
}

Result<ModelData> DecodeModel(std::string_view bytes, std::string_view source) {
  const size_t magic_seen = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, magic_seen) != kMagic.substr(0, magic_seen))
    return Bad(source, "bad magic: not a virga model file");
  if (bytes.size() < kPreamble + 8)
    return Bad(source, "truncated: " + std::to_string(bytes.size()) + " bytes");
  coding::Reader preamble(bytes.substr(kMagic.size()));
  uint32_t header_len = 0;
  preamble.U32(&header_len);
  if (header_len > kMaxModelHeaderBytes)
    return Bad(source, "header length " + std::to_string(header_len) + " exceeds " +
                           std::to_string(kMaxModelHeaderBytes) + " bytes");
  if (bytes.size() < kPreamble + header_len + 8)
    return Bad(source, "truncated: " + std::to_string(bytes.size()) + " bytes, the header alone needs " +
                           std::to_string(kPreamble + header_len + 8));
  std::string_view body;
  if (!coding::VerifyChecksumTrailer(bytes, &body))
    return Bad(source, "checksum mismatch" + TruncationHint(bytes, header_len));

  ModelData m;
  uint64_t rows = 0;
  VIRGA_RETURN_IF_ERROR(ParseHeader(body.substr(kPreamble, header_len), source, &m.header, &rows));
  const uint64_t want = ExpectedSize(header_len, rows, m.header.width);
  if (want != bytes.size())
    return Bad(source, "size " + std::to_string(bytes.size()) + " bytes does not match the header (" +
                           std::to_string(rows) + " rows of width " +
                           std::to_string(m.header.width) + " need " + std::to_string(want) + ")");
  m.keys.resize(rows);
  m.weights.resize(rows * m.header.width);
  coding::Reader r(body.substr(kPreamble + header_len));
  std::string_view w;
  for (uint64_t i = 0; i < rows; ++i) {
    r.U64(&m.keys[i]);
    r.Bytes(4 * m.header.width, &w);
    std::memcpy(m.weights.data() + i * m.header.width, w.data(), w.size());
    if (i > 0 && m.keys[i] <= m.keys[i - 1])
      return Bad(source, "keys are not strictly ascending at row " + std::to_string(i));
  }
  return m;
}

Status SaveModel(const std::string& path, const ModelData& model) {
  VIRGA_ASSIGN_OR_RETURN(std::string bytes, EncodeModel(model));
  if (IsModelUri(path)) {
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(path));
    return ref.store->Put(ref.key, bytes).WithContext("model file '" + path + "'");
  }
  return WriteFileAtomically(path, bytes, {.mode = 0644}).WithContext("model file");
}

Result<ModelData> LoadModel(const std::string& path) {
  if (IsModelUri(path)) {
    VIRGA_ASSIGN_OR_RETURN(ObjectRef ref, OpenObjectUri(path));
    std::string bytes;
    VIRGA_RETURN_IF_ERROR(ref.store->Get(ref.key, &bytes).WithContext("model file '" + path + "'"));
    return DecodeModel(bytes, path);
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string what = "model file '" + path + "': " + ErrnoText(err);
    return err == ENOENT ? Status::NotFound(what) : Status::IOError(what);
  }
  std::string bytes;
  struct stat st {};
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::IOError("model file '" + path + "': stat: " + ErrnoText(errno));
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::InvalidArgument("model file '" + path + "': not a regular file");
  } else {
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (s.ok() && done < bytes.size()) {
      ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) s = Status::IOError("model file '" + path + "': read: " + ErrnoText(errno));
      else if (n == 0) break;  // shrank while reading: the decoder reports truncation
      else done += static_cast<size_t>(n);
    }
    bytes.resize(done);
  }
  ::close(fd);
  VIRGA_RETURN_IF_ERROR(s);
  return DecodeModel(bytes, path);
}

}  // namespace virga
