// Line parsers for the text formats virga ingests: LIBSVM, Criteo TSV, CSV
// and ratings. A parser turns one line into one row appended to a RowBlock.
// Format details and the exact Criteo feature encoding: docs/formats.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "virga/row_block.h"
#include "virga/status.h"

namespace virga {

enum class Format { kLibsvm, kCriteo, kCsv, kRatings };

// "libsvm", "criteo", "csv", "ratings"; InvalidArgument otherwise.
Result<Format> ParseFormatName(std::string_view name);
const char* FormatName(Format format);

enum class CsvHeader { kAuto, kPresent, kAbsent };

struct ParseOptions {
  // Criteo: features are hashed into 2^hash_bits slots (1..32).
  int hash_bits = 20;
  // CSV: the label column, by header name or by 0-based index ("0" = first).
  std::string csv_label_column = "0";
  // CSV: kAuto treats the first line as a header when any field in it is not
  // a number.
  CsvHeader csv_header = CsvHeader::kAuto;
  char csv_delimiter = ',';
  // > 0: labels are class numbers (softmax, docs/models.md): a label that is
  // not an integer in [0, classes) is an error of its line ("label 10 is not
  // a class of 0..9"). 0: any finite label.
  uint32_t classes = 0;
};

// Parses the lines of one input file, in order (parsers may keep state, e.g.
// the CSV header). Not thread-safe; make one per file.
class LineParser {
 public:
  virtual ~LineParser() = default;

  // Parses `line` (no terminator). On success appends exactly one row to
  // *out and sets *added = true, or, for a line that holds no row (blank,
  // '#' comment, CSV header), leaves *out unchanged and sets *added = false.
  // On failure returns InvalidArgument whose message is the reason only
  // (e.g. "feature 3: bad index 'ab'"); the caller prefixes FILE:LINE. *out
  // then holds the same rows as before (all_ones() may have turned false).
  // The OK path allocates nothing once *out has capacity.
  //
  // Errors: bad number, index out of range (> 2^32-1, or negative), missing
  // label, wrong field count, NaN or infinite value or label.
  virtual Status ParseLine(std::string_view line, RowBlock* out, bool* added) = 0;

  // Upper bound of feature indices this format can produce, if fixed:
  // 2^hash_bits for Criteo; for CSV the number of feature columns, known once
  // the first line is parsed (0 before). 0 if unbounded (LIBSVM, ratings:
  // the largest index seen + 1 decides).
  virtual uint64_t index_bound() const = 0;
};

Result<std::unique_ptr<LineParser>> MakeParser(Format format, const ParseOptions& options);

}  // namespace virga
