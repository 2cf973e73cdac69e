// CSV: dense numeric rows, one label column, every other column a feature.
// Rules: docs/formats.md.
#include <cstring>
#include <string>
#include <vector>

#include "formats/number_parse.h"
#include "formats/parsers.h"

namespace virga::formats {
namespace {

// Trims spaces, and tabs unless tab is the delimiter.
std::string_view Trim(const char* b, const char* e, char delimiter) {
  auto pad = [delimiter](char c) { return c == ' ' || (c == '\t' && delimiter != '\t'); };
  while (b != e && pad(*b)) ++b;
  while (e != b && pad(e[-1])) --e;
  return std::string_view(b, e - b);
}

std::vector<std::string_view> SplitAll(std::string_view line, char delimiter) {
  std::vector<std::string_view> fields;
  const char* p = line.data();
  const char* const end = p + line.size();
  while (true) {
    const void* hit = std::memchr(p, delimiter, end - p);
    const char* d = hit ? static_cast<const char*>(hit) : end;
    fields.push_back(Trim(p, d, delimiter));
    if (d == end) return fields;
    p = d + 1;
  }
}

bool IsBlankLine(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

class CsvParser final : public LineParser {
 public:
  explicit CsvParser(const ParseOptions& options) : options_(options) {}

  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    *added = false;
    if (IsBlankLine(line)) return Status::OK();
    if (num_columns_ == 0) {
      bool header = false;
      VIRGA_RETURN_IF_ERROR(Start(line, &header));
      if (header) return Status::OK();
    }
    Status s = ParseRow(line, out);
    if (!s.ok()) {
      out->AbandonRow();
      return s;
    }
    *added = true;
    return s;
  }

  // The number of feature columns, known once the first line is read.
  uint64_t index_bound() const override { return num_columns_ == 0 ? 0 : num_columns_ - 1; }

 private:
  // Reads the first non-blank line: fixes the column count, the header and
  // the label column. *header tells whether `line` was a header.
  Status Start(std::string_view line, bool* header) {
    const std::vector<std::string_view> fields = SplitAll(line, options_.csv_delimiter);
    *header = options_.csv_header == CsvHeader::kPresent;
    if (options_.csv_header == CsvHeader::kAuto) {
      for (std::string_view f : fields) {
        float v = 0;
        if (!f.empty() && ParseFloat(f, &v) == NumStatus::kBad) *header = true;
      }
    }
    std::vector<std::string> names;
    if (*header) {
      for (std::string_view f : fields) {
        if (f.size() >= 2 && f.front() == '"' && f.back() == '"') f = f.substr(1, f.size() - 2);
        names.emplace_back(f);
      }
    }
    const std::string& want = options_.csv_label_column;
    size_t label = fields.size();
    for (size_t c = 0; c < names.size() && label == fields.size(); ++c) {
      if (names[c] == want) label = c;
    }
    if (label == fields.size()) {
      uint32_t i = 0;
      if (ParseIndex(want, &i) == NumStatus::kOk) {
        if (i >= fields.size()) {
          return Status::InvalidArgument("label column " + want +
                                         " is out of range: the line has " +
                                         std::to_string(fields.size()) + " fields");
        }
        label = i;
      } else if (!*header) {
        return Status::InvalidArgument("label column '" + want +
                                       "' is a name but the file has no header");
      } else {
        return Status::InvalidArgument("label column '" + want + "' is not in the header");
      }
    }
    num_columns_ = fields.size();
    label_column_ = label;
    names_ = std::move(names);
    return Status::OK();
  }

  // Appends the row of a data line. On error features may have been added.
  Status ParseRow(std::string_view line, RowBlock* out) {
    const char delimiter = options_.csv_delimiter;
    const char* p = line.data();
    const char* const end = p + line.size();
    size_t column = 0;
    uint32_t feature = 0;
    float label = 0;
    while (true) {
      const void* hit = std::memchr(p, delimiter, end - p);
      const char* d = hit ? static_cast<const char*>(hit) : end;
      if (column < num_columns_) {
        const std::string_view field = Trim(p, d, delimiter);
        if (field.empty()) return ColumnError(column, "empty value");
        float v = 0;
        if (NumStatus st = ParseFloat(field, &v); st != NumStatus::kOk) {
          return ColumnError(column, NumberError(st, "value", field));
        }
        if (column == label_column_) {
          label = v;
        } else {
          out->AddFeature(feature++, v);  // zeros too: the data is dense
        }
      }
      ++column;
      if (d == end) break;
      p = d + 1;
    }
    if (column != num_columns_) {
      return Status::InvalidArgument("expected " + std::to_string(num_columns_) +
                                     " fields (as in the first line), found " +
                                     std::to_string(column));
    }
    out->EndRow(label);
    return Status::OK();
  }

  // "column 'age' (3): what", or "column 3: what" without a header; 0-based.
  Status ColumnError(size_t column, const std::string& what) const {
    std::string where = "column " + std::to_string(column);
    if (!names_.empty()) where = "column '" + names_[column] + "' (" + std::to_string(column) + ")";
    return Status::InvalidArgument(where + ": " + what);
  }

  const ParseOptions options_;
  size_t num_columns_ = 0;  // fixed by the first line; 0 before it
  size_t label_column_ = 0;
  std::vector<std::string> names_;  // header names; empty without a header
};

}  // namespace

std::unique_ptr<LineParser> NewCsvParser(const ParseOptions& options) {
  return std::make_unique<CsvParser>(options);
}

}  // namespace virga::formats
