// The model file: a trained model's weights plus what is needed to use them,
// in one versioned, checksummed file (`virga export` writes it, `virga
// predict` reads it). Format: docs/model-file.md. In short:
//
//   "VIRGAMDL"  u32 header_len  header JSON  rows x (u64 key, width x f32)  u64 XXH3-64
//
// all little-endian, rows sorted by key, the checksum covering every byte
// before it. Every check failure is a Status naming the file and what is
// wrong (bad magic, truncated, checksum mismatch, unsupported version, a bad
// header field); no input makes the decoder crash or read out of bounds.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "virga/model.h"
#include "virga/status.h"

namespace virga {

inline constexpr int kModelFileVersion = 1;      // written, and the only one read
inline constexpr char kModelFileMagic[] = "VIRGAMDL";  // the first 8 bytes
inline constexpr size_t kMaxModelHeaderBytes = 1u << 20;

struct ModelFileHeader {
  ModelKind model = ModelKind::kLogisticRegression;
  uint32_t width = 1;             // floats per key, 1..65536
  std::string dataset;            // the training dataset's name; empty if unknown
  uint64_t num_features = 0;      // its feature space (manifest); 0 if unknown
  int hash_bits = 0;              // its hashed feature bits (criteo); 0 if none/unknown
  std::string training = "{}";    // free JSON object: optimizer, table, job, ...
  std::string created_at;         // ISO 8601 UTC; free text to the decoder
  int version = kModelFileVersion;  // set by the decoder; the encoder always writes 1
};

// A model in memory: weights[i * width + c] belongs to keys[i].
struct ModelData {
  ModelFileHeader header;
  std::vector<uint64_t> keys;     // strictly ascending
  std::vector<float> weights;     // keys.size() * header.width

  // Weights of `key` (width floats), or empty when the model has none.
  std::span<const float> Find(uint64_t key) const;
  // out[i * width + c] = weights of want[i], 0 for keys the model lacks.
  // REQUIRES: want ascending, out.size() == want.size() * width. O(n + m).
  void Gather(std::span<const uint64_t> want, std::span<float> out) const;
};

// Builds a ModelData from PsClient::DumpTable rows (sorted by key).
// InvalidArgument naming the key if a row's width is not header.width or
// keys are not strictly ascending.
Result<ModelData> ModelFromRows(ModelFileHeader header,
                                std::span<const std::pair<uint64_t, std::vector<float>>> rows);

// The file's bytes. InvalidArgument if the model breaks the invariants above
// or `training` is not a JSON object.
Result<std::string> EncodeModel(const ModelData& model);
// Parses bytes read from `source` (a path or object key, used in messages).
// Corruption for bad magic, truncation, checksum or structure; InvalidArgument
// for an unsupported version or a bad header field.
Result<ModelData> DecodeModel(std::string_view bytes, std::string_view source);

// Where a model file lives. One rule for every reader and writer (virga
// export/train --model-out/predict, TrainJob::SaveModel, the Python package):
//  - a URI with a scheme is an object in a store, opened with OpenObjectUri:
//    "s3://bucket/models/m.vmdl", "mem://name/models/m.vmdl",
//    "file:///abs/dir/m.vmdl" (key: the file name);
//  - anything else is a local file path.
bool IsModelUri(std::string_view location);

// Writes `model` to `location` atomically: an object Put, or a local file
// written through a temporary file in the same directory, fdatasync'd and
// renamed over it (mode 0644). IOError / the store's status naming it.
Status SaveModel(const std::string& location, const ModelData& model);
// Reads and decodes a model file. NotFound if it does not exist.
Result<ModelData> LoadModel(const std::string& location);

}  // namespace virga
