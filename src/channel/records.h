// The objects a channel job keeps in storage, their keys and binary forms
// (docs/channel.md, "Storage layout"). Every record is little-endian, starts
// with a 4-byte magic and ends with the XXH3-64 of what precedes it; a
// decode failure is Corruption naming the key.
//
// The model is a dense vector of `dim` floats: feature i at index i, the bias
// at dim - 1. It is cut in `chunks` contiguous chunks, chunk c holding
// [ChunkBegin(c), ChunkBegin(c + 1)); worker slot c reduces chunk c.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virga/status.h"

namespace virga::channel {

inline constexpr uint32_t kNoItem = 0xFFFF'FFFFu;

// Keys of one job, all under "channel/<job>/".
class Layout {
 public:
  Layout(std::string_view job, uint64_t dim, uint32_t chunks);

  uint64_t dim() const { return dim_; }
  uint32_t chunks() const { return chunks_; }
  uint64_t ChunkBegin(uint32_t c) const { return dim_ * c / chunks_; }
  uint64_t ChunkSize(uint32_t c) const { return ChunkBegin(c + 1) - ChunkBegin(c); }
  // The chunk holding dense index i.
  uint32_t ChunkOf(uint64_t i) const;

  const std::string& prefix() const { return prefix_; }
  std::string Model(uint64_t round, uint32_t chunk) const;   // model/<round>/<chunk>
  std::string State(uint64_t round, uint32_t chunk) const;   // state/<round>/<chunk>
  std::string Grad(uint64_t round, uint32_t chunk, uint32_t slot) const;  // grad/<round>/<chunk>/<slot>
  std::string Cursor(uint32_t slot) const;                   // cursor/<slot>
  std::string Stop() const { return prefix_ + "stop"; }
  std::string RoundHint() const { return prefix_ + "round"; }  // decimal: a complete round

 private:
  std::string prefix_;
  uint64_t dim_;
  uint32_t chunks_;
};

// One slot's item whose gradient a reducer summed into a model chunk.
struct Inclusion {
  uint32_t slot = 0;
  uint32_t pos = 0;  // position of the item in the slot's list (plan.h)
  bool operator==(const Inclusion&) const = default;
};

// Model chunk of round r (r >= 1: reduced from round r - 1's gradients).
struct ModelChunkHeader {
  uint64_t round = 0;
  uint32_t chunk = 0;
  uint64_t begin = 0, size = 0;
  std::vector<Inclusion> included;  // the gradients of round - 1 summed into it
};
void EncodeModelChunk(const ModelChunkHeader& h, std::span<const float> weights, std::string* out);
// Copies the weights into dense[h.begin .. h.begin + h.size). Corruption
// naming `key` when malformed or when round/chunk/begin/size differ from *h's
// expected values (which the caller sets; included is filled in).
Status DecodeModelChunk(std::string_view bytes, std::string_view key, ModelChunkHeader* h,
                        std::span<float> dense);

// Optimizer state of a chunk: size * width floats (OptimizerStateWidth).
void EncodeStateChunk(uint64_t round, uint32_t chunk, std::span<const float> state, std::string* out);
Status DecodeStateChunk(std::string_view bytes, std::string_view key, uint64_t round, uint32_t chunk,
                        std::span<float> state);

// One slot's gradient for one chunk in one round: sparse (index relative to
// the chunk's begin, value), plus what it covers.
struct GradHeader {
  uint64_t round = 0;
  uint32_t chunk = 0, slot = 0;
  uint32_t pos = kNoItem;  // the item it is the gradient of; kNoItem: none (an empty gradient)
  uint32_t rows = 0;
  double loss = 0;         // summed training loss of those rows
};
void EncodeGrad(const GradHeader& h, std::span<const uint32_t> index, std::span<const float> value,
                std::string* out);
// Decodes into *h and the two vectors (capacity reused).
Status DecodeGrad(std::string_view bytes, std::string_view key, GradHeader* h,
                  std::vector<uint32_t>* index, std::vector<float>* value);

// A slot's progress, written by its function every round so a respawned one
// resumes: the round it is in, the item it took in that round, the next
// untaken item, items to redo (their gradient was not in every chunk), and
// how often each item of the slot's list was fully applied.
struct Cursor {
  uint64_t round = 0;
  uint32_t inflight = kNoItem;
  uint32_t next = 0;
  std::vector<uint32_t> redo;
  std::vector<uint8_t> done;  // per position of the slot's list; saturates at 255
  uint64_t samples = 0;       // rows of fully applied items
  double loss = 0;            // their summed training loss
};
std::string EncodeCursor(const Cursor& c);
Status DecodeCursor(std::string_view bytes, std::string_view key, Cursor* c);

}  // namespace virga::channel
