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

// The task a dataset's labels are declared for (ingest --task, the Python
// load_* task=): every label is checked as its line is parsed, and a label
// that does not fit is an error of its line (FILE:LINE: reason; skipped with
// --on-error skip). The model's own check of the whole dataset's labels
// still runs when a job starts (docs/models.md).
enum class LabelTask : uint8_t {
  kAny = 0,         // any finite label (the default)
  kBinary = 1,      // 0/1 or -1/+1; one convention per input file (a mix is an error)
  kRegression = 2,  // any finite number (ratings, mf)
  kMulticlass = 3,  // integer class numbers: 0..classes-1 with classes > 0, else 0..2^24-1
};
// "any", "binary", "regression", "multiclass"; InvalidArgument otherwise.
Result<LabelTask> ParseLabelTaskName(std::string_view name);
const char* LabelTaskName(LabelTask task);

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
  // The labels' declared task; classes > 0 implies kMulticlass and fits no
  // other task (MakeParser refuses the pair).
  LabelTask task = LabelTask::kAny;
};

// The label rule of ParseOptions::task and classes, one label at a time, in
// input order: the rule of every parser MakeParser makes, and of IngestRows
// (rows from memory, the Python estimators' staging). Stateful (a binary
// task keeps the convention of its first label): one per input file.
class LabelCheck {
 public:
  // InvalidArgument for classes with a task other than multiclass.
  static Result<LabelCheck> Make(const ParseOptions& options);
  // False when every finite label passes (task kAny, no classes).
  bool active() const { return task_ != LabelTask::kAny && task_ != LabelTask::kRegression; }
  // OK, or InvalidArgument whose message is the reason only, e.g.
  // "label 7 is not binary (0/1 or -1/+1; --task binary)".
  Status Check(float label);

 private:
  LabelCheck(LabelTask task, uint32_t classes) : task_(task), classes_(classes) {}
  LabelTask task_;
  uint32_t classes_;
  float negative_ = 1;  // binary: the negative label seen first (0 or -1); 1 = none yet
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

  // True when every value this parser produces is 1 (Criteo's hashed fields):
  // no feature of its data can be numeric, so an ingest keeps no feature
  // statistics for it.
  virtual bool values_are_ones() const { return false; }
};

Result<std::unique_ptr<LineParser>> MakeParser(Format format, const ParseOptions& options);

}  // namespace virga
