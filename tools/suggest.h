// "Did you mean" for mistyped flags and subcommands (CLI11 names neither).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace virga::cli {

// Edit distance (insert, delete, substitute, swap of neighbours).
size_t EditDistance(const std::string& a, const std::string& b);

// The closest of `names` to `typed`, if close enough to be a typo (at most 2
// edits, and fewer than half of its length); "" otherwise.
std::string ClosestName(const std::string& typed, const std::vector<std::string>& names);

// One line per argument of the failed parse that names no flag or
// subcommand of the command it was given to, each with the closest name:
// "virga ingest: unknown flag --fromat; did you mean --format?". Empty when
// there is nothing to suggest.
std::string SuggestFixes(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace virga::cli
