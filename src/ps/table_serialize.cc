#include "ps/table_serialize.h"

#include <xxhash.h>

#include <bit>
#include <cstring>

#include "ps/table_internal.h"

namespace virga::ps::internal {

static_assert(std::endian::native == std::endian::little, "virga assumes a little-endian host");

namespace {

constexpr char kMagic[4] = {'V', 'G', 'T', 'B'};

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
void PutAt(std::string* out, size_t at, T v) {
  std::memcpy(out->data() + at, &v, sizeof v);
}

uint64_t Checksum(const char* header, const char* body, size_t body_size) {
  const uint64_t seed = XXH3_64bits(header, 16);
  return XXH3_64bits_withSeed(body, body_size, seed);
}

// Sequential little-endian reads; each fails once the bytes run out.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() < sizeof(T)) return false;
    std::memcpy(v, b_.data(), sizeof(T));
    b_.remove_prefix(sizeof(T));
    return true;
  }
  bool GetBytes(size_t n, std::string_view* v) {
    if (b_.size() < n) return false;
    *v = b_.substr(0, n);
    b_.remove_prefix(n);
    return true;
  }
  std::string_view rest() const { return b_; }

 private:
  std::string_view b_;
};

float* OptimizerFloats(OptimizerConfig* o, size_t i) {
  float* fields[] = {&o->learning_rate, &o->l1, &o->l2, &o->momentum, &o->beta1, &o->beta2,
                     &o->epsilon, &o->initial_accumulator, &o->ftrl_beta, &o->clip,
                     &o->decay_rate};
  return i < std::size(fields) ? fields[i] : nullptr;
}

}  // namespace

TableWriter::TableWriter(const TableConfig& c, uint64_t version, std::string* out)
    : out_(out), start_(out->size()) {
  out->append(kTableHeaderSize, '\0');
  Put<uint16_t>(out, static_cast<uint16_t>(c.name.size()));
  out->append(c.name);
  Put<uint8_t>(out, static_cast<uint8_t>(c.kind));
  Put<uint8_t>(out, static_cast<uint8_t>(c.init));
  Put<uint8_t>(out, static_cast<uint8_t>(c.optimizer.kind));
  Put<uint8_t>(out, static_cast<uint8_t>(c.optimizer.schedule));
  Put<uint32_t>(out, c.width);
  Put<uint64_t>(out, c.dense_rows);
  Put<float>(out, c.init_scale);
  Put<uint64_t>(out, c.seed);
  OptimizerConfig o = c.optimizer;
  for (size_t i = 0; float* f = OptimizerFloats(&o, i); ++i) Put<float>(out, *f);
  Put<uint64_t>(out, c.optimizer.decay_steps);
  Put<uint64_t>(out, version);
  count_at_ = out->size();
  Put<uint64_t>(out, 0);
}

void TableWriter::AddKeyedRow(uint64_t key, const float* row, uint32_t n) {
  Put<uint64_t>(out_, key);
  out_->append(reinterpret_cast<const char*>(row), size_t{n} * sizeof(float));
  ++rows_;
}

void TableWriter::AddRows(const float* data, size_t n, uint64_t rows) {
  out_->append(reinterpret_cast<const char*>(data), n * sizeof(float));
  rows_ += rows;
}

void TableWriter::Finish() {
  PutAt<uint64_t>(out_, count_at_, rows_);
  const size_t body = out_->size() - start_ - kTableHeaderSize;
  char* h = out_->data() + start_;
  std::memcpy(h, kMagic, 4);
  PutAt<uint16_t>(out_, start_ + 4, kTableFormatVersion);
  PutAt<uint16_t>(out_, start_ + 6, 0);
  PutAt<uint64_t>(out_, start_ + 8, body);
  PutAt<uint64_t>(out_, start_ + 16, Checksum(h, h + kTableHeaderSize, body));
}

Result<ParsedTable> ParseTable(std::string_view bytes, std::string_view source) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption(std::string(source) + ": table: " + why);
  };
  if (bytes.size() < kTableHeaderSize) return bad("truncated header");
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) return bad("bad magic (not a serialized table)");
  uint16_t format = 0, reserved = 0;
  uint64_t body_size = 0, checksum = 0;
  Reader hdr(bytes.substr(4, kTableHeaderSize - 4));  // cannot run out: 20 bytes
  if (!(hdr.Get(&format) && hdr.Get(&reserved) && hdr.Get(&body_size) && hdr.Get(&checksum))) {
    return bad("truncated header");
  }
  if (format != kTableFormatVersion) return bad("unsupported format version " + std::to_string(format));
  if (reserved != 0) return bad("nonzero reserved header field");
  if (body_size != bytes.size() - kTableHeaderSize) {
    return bad("body size " + std::to_string(body_size) + " but " +
               std::to_string(bytes.size() - kTableHeaderSize) + " bytes follow the header");
  }
  if (Checksum(bytes.data(), bytes.data() + kTableHeaderSize, body_size) != checksum) {
    return bad("checksum mismatch");
  }

  ParsedTable p;
  TableConfig& c = p.config;
  Reader r(bytes.substr(kTableHeaderSize));
  uint16_t name_len = 0;
  std::string_view name;
  uint8_t kind = 0, init = 0, opt = 0, schedule = 0;
  bool ok = r.Get(&name_len) && r.GetBytes(name_len, &name) && r.Get(&kind) && r.Get(&init) &&
            r.Get(&opt) && r.Get(&schedule) && r.Get(&c.width) && r.Get(&c.dense_rows) &&
            r.Get(&c.init_scale) && r.Get(&c.seed);
  for (size_t i = 0; ok && OptimizerFloats(&c.optimizer, i); ++i) {
    ok = r.Get(OptimizerFloats(&c.optimizer, i));
  }
  ok = ok && r.Get(&c.optimizer.decay_steps) && r.Get(&p.version) && r.Get(&p.rows);
  if (!ok) return bad("truncated config");
  c.name.assign(name);
  c.kind = static_cast<TableKind>(kind);
  c.init = static_cast<InitKind>(init);
  c.optimizer.kind = static_cast<OptimizerKind>(opt);
  c.optimizer.schedule = static_cast<LrSchedule>(schedule);
  if (Status s = c.Validate(); !s.ok()) return bad("invalid config: " + s.message());

  p.payload = r.rest();
  const uint64_t row_bytes = uint64_t{RowFloats(c)} * sizeof(float) +
                             (c.kind == TableKind::kSparse ? sizeof(uint64_t) : 0);
  if (c.kind == TableKind::kDense && p.rows != c.dense_rows) {
    return bad("row count " + std::to_string(p.rows) + " != dense_rows " +
               std::to_string(c.dense_rows));
  }
  if (p.payload.size() / row_bytes != p.rows || p.payload.size() % row_bytes != 0) {
    return bad("row count " + std::to_string(p.rows) + " does not match " +
               std::to_string(p.payload.size()) + " bytes of rows");
  }
  return p;
}

}  // namespace virga::ps::internal
