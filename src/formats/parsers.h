// Constructors of the concrete LineParsers behind MakeParser (parser.h).
// Internal to src/formats. Options are validated by MakeParser.
#pragma once

#include <memory>

#include "virga/parser.h"

namespace virga::formats {

std::unique_ptr<LineParser> NewLibsvmParser();
// REQUIRES: 1 <= hash_bits <= 32.
std::unique_ptr<LineParser> NewCriteoParser(int hash_bits);
std::unique_ptr<LineParser> NewCsvParser(const ParseOptions& options);
std::unique_ptr<LineParser> NewRatingsParser();
// `inner`, with every row's label checked by `check` (ParseOptions::task and
// classes); a bad one is an error of its line, its row dropped.
std::unique_ptr<LineParser> NewLabelCheck(std::unique_ptr<LineParser> inner, LabelCheck check);

// True for the bytes that separate LIBSVM tokens: space and tab.
inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }

}  // namespace virga::formats
