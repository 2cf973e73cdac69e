#include "aws/ini.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace virga::aws {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsBlank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Status LineError(std::string_view path, int line, std::string_view what) {
  return Status::InvalidArgument(std::string(path) + ":" + std::to_string(line) + ": " +
                                 std::string(what));
}

}  // namespace

const IniFile::Section* IniFile::Find(std::string_view name) const {
  auto it = sections.find(name);
  return it == sections.end() ? nullptr : &it->second;
}

Result<IniFile> ParseIni(std::string_view text, std::string_view path) {
  IniFile ini;
  IniFile::Section* section = nullptr;
  bool after_setting = false;  // an indented line continues the last setting
  int line_no = 0;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    const std::string_view raw = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (after_setting && IsBlank(raw.front())) continue;
    after_setting = false;
    if (line.front() == '[') {
      if (line.back() != ']') return LineError(path, line_no, "a section header lacks its ']'");
      const std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.empty()) return LineError(path, line_no, "a section header has no name");
      section = &ini.sections[std::string(name)];
      continue;
    }
    const size_t delim = line.find_first_of("=:");
    if (delim == std::string_view::npos) {
      return LineError(path, line_no, "expected '[section]', 'name = value' or a comment");
    }
    const std::string_view name = Trim(line.substr(0, delim));
    if (name.empty()) return LineError(path, line_no, "a setting has no name");
    if (section == nullptr) return LineError(path, line_no, "a setting before any [section]");
    (*section)[Lower(name)] = std::string(Trim(line.substr(delim + 1)));
    after_setting = true;
  }
  return ini;
}

Result<IniFile> ReadIniFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(path + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::IOError(path + ": not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return Status::IOError(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError(path + ": cannot read");
  return ParseIni(text.str(), path);
}

}  // namespace virga::aws
