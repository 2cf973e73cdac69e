// GenerateCriteo: draws rows from the planted model (criteo_model.h) and
// writes them as Criteo TSV through a TextWriter.
//
// Rows are a pure function of (seed, row number), so chunks of rows are
// drawn and formatted by several threads and written in order; statistics
// are summed per chunk and then over chunks in order, so the output bytes
// and the report do not depend on the thread count.
#include "virga/datagen.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "formats/criteo_model.h"
#include "virga/text_writer.h"

namespace virga {
namespace {

using formats::CriteoModel;
using formats::CriteoRow;

constexpr uint64_t kChunkRows = 2048;
// The longest possible line: label, 13 tab + int64 (20 chars), 26 tab +
// token, newline = 1 + 13 * 21 + 26 * 9 + 1 = 509 bytes.
constexpr size_t kMaxRowBytes = 512;
constexpr unsigned kMaxThreads = 8;

// Appends row `r` as a Criteo TSV line at `w`; returns the new end.
char* FormatRow(const CriteoRow& r, char* w) {
  *w++ = r.label ? '1' : '0';
  for (int i = 0; i < criteo::kNumIntFields; ++i) {
    *w++ = '\t';
    if (!r.int_missing[i]) w = std::to_chars(w, w + 24, r.ints[i]).ptr;
  }
  for (int j = 0; j < criteo::kNumCatFields; ++j) {
    *w++ = '\t';
    if (!r.cat_missing[j]) {
      formats::FormatToken(r.cats[j], w);
      w += formats::kCriteoTokenChars;
    }
  }
  *w++ = '\n';
  return w;
}

struct Chunk {
  std::string text;  // capacity kChunkRows * kMaxRowBytes, reused
  size_t size = 0;   // bytes of text used
  double loss = 0;
  double entropy = 0;
  uint64_t positives = 0;
};

// Draws and formats rows [first, first + n) into *c.
void FillChunk(const CriteoModel& model, uint64_t first, uint64_t n, Chunk* c) {
  c->text.resize(kChunkRows * kMaxRowBytes);
  char* const begin = c->text.data();
  char* w = begin;
  c->loss = c->entropy = 0;
  c->positives = 0;
  CriteoRow row;
  for (uint64_t i = first; i < first + n; ++i) {
    model.Sample(i, &row);
    // -log p(y) and H(p) without overflow: with l = log(1 + exp(-|z|)),
    // -log sigmoid(z) = l + max(-z, 0) and -log(1 - sigmoid(z)) = l + max(z, 0).
    const double z = row.logit;
    const double l = std::log1p(std::exp(-std::fabs(z)));
    const double nll1 = l + std::max(-z, 0.0), nll0 = l + std::max(z, 0.0);
    c->loss += row.label ? nll1 : nll0;
    c->entropy += row.probability * nll1 + (1 - row.probability) * nll0;
    c->positives += row.label;
    w = FormatRow(row, w);
  }
  c->size = w - begin;
}

}  // namespace

Result<CriteoGenReport> GenerateCriteo(const CriteoGenOptions& options) {
  if (options.out_path.empty()) return Status::InvalidArgument("datagen: no output path");
  const auto start = std::chrono::steady_clock::now();
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<TextWriter> writer, TextWriter::Open(options.out_path));
  if (!(options.interactions >= 0) || options.interactions > 10)
    return Status::InvalidArgument("datagen: interactions must be in [0, 10]");
  const CriteoModel model(options.seed, options.interactions);

  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
  std::vector<Chunk> chunks(threads);
  CriteoGenReport report;
  double loss = 0, entropy = 0;
  for (uint64_t base = 0; base < options.rows; base += threads * kChunkRows) {
    unsigned used = 0;
    std::vector<std::thread> workers;
    for (; used < threads && base + used * kChunkRows < options.rows; ++used) {
      const uint64_t first = base + used * kChunkRows;
      const uint64_t n = std::min(kChunkRows, options.rows - first);
      if (used == 0) continue;  // chunk 0 is drawn on this thread, below
      workers.emplace_back(FillChunk, std::cref(model), first, n, &chunks[used]);
    }
    FillChunk(model, base, std::min(kChunkRows, options.rows - base), &chunks[0]);
    for (std::thread& t : workers) t.join();
    for (unsigned c = 0; c < used; ++c) {
      VIRGA_RETURN_IF_ERROR(writer->Write(std::string_view(chunks[c].text.data(), chunks[c].size)));
      report.bytes += chunks[c].size;
      loss += chunks[c].loss;
      entropy += chunks[c].entropy;
      report.positives += chunks[c].positives;
    }
    if (options.on_progress)
      options.on_progress(std::min(options.rows, base + used * kChunkRows), report.bytes);
  }
  VIRGA_RETURN_IF_ERROR(writer->Close());

  report.rows = options.rows;
  if (report.rows > 0) {
    report.bayes_logloss = loss / report.rows;
    report.expected_bayes_logloss = entropy / report.rows;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace virga
