#include "virga/parser.h"

#include <string>

#include "formats/parsers.h"

namespace virga {

Result<Format> ParseFormatName(std::string_view name) {
  if (name == "libsvm") return Format::kLibsvm;
  if (name == "criteo") return Format::kCriteo;
  if (name == "csv") return Format::kCsv;
  if (name == "ratings") return Format::kRatings;
  return Status::InvalidArgument("unknown format '" + std::string(name) +
                                 "' (expected libsvm, criteo, csv or ratings)");
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kLibsvm:
      return "libsvm";
    case Format::kCriteo:
      return "criteo";
    case Format::kCsv:
      return "csv";
    case Format::kRatings:
      return "ratings";
  }
  return "unknown";
}

namespace {

Result<std::unique_ptr<LineParser>> MakeFormatParser(Format format, const ParseOptions& options) {
  switch (format) {
    case Format::kLibsvm:
      return formats::NewLibsvmParser();
    case Format::kCriteo:
      if (options.hash_bits < 1 || options.hash_bits > 32) {
        return Status::InvalidArgument("hash_bits must be in 1..32, got " +
                                       std::to_string(options.hash_bits));
      }
      return formats::NewCriteoParser(options.hash_bits);
    case Format::kCsv: {
      const char d = options.csv_delimiter;
      if (d == '\n' || d == '\r' || d == '\0' || d == '"' || d == '.' || d == '-' || d == '+' ||
          (d >= '0' && d <= '9')) {
        return Status::InvalidArgument(std::string("csv delimiter '") + d +
                                       "' cannot separate numbers");
      }
      if (options.csv_label_column.empty()) {
        return Status::InvalidArgument("csv label column is empty");
      }
      return formats::NewCsvParser(options);
    }
    case Format::kRatings:
      return formats::NewRatingsParser();
  }
  return Status::InvalidArgument("unknown format");
}

}  // namespace

Result<std::unique_ptr<LineParser>> MakeParser(Format format, const ParseOptions& options) {
  VIRGA_ASSIGN_OR_RETURN(LabelCheck check, LabelCheck::Make(options));
  VIRGA_ASSIGN_OR_RETURN(std::unique_ptr<LineParser> parser, MakeFormatParser(format, options));
  if (!check.active()) return parser;
  return formats::NewLabelCheck(std::move(parser), check);
}

}  // namespace virga
