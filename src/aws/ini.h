// The INI dialect of the AWS shared files (~/.aws/credentials, ~/.aws/config),
// read the way botocore reads it:
//   [section]            a section header; the name is kept as written, trimmed
//   name = value         or "name: value"; names are trimmed and lower-cased,
//                        values trimmed; no inline comments ("a # b" is the value)
//   # or ; at the start  a comment line; blank lines are skipped
//   an indented line     after a setting: part of it (nested settings such as
//                        "s3 =\n  addressing_style = path"), kept out of `sections`
// A setting repeated in a section keeps its last value.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "virga/status.h"

namespace virga::aws {

struct IniFile {
  using Section = std::map<std::string, std::string, std::less<>>;
  std::map<std::string, Section, std::less<>> sections;

  // The section named `name`, or null.
  const Section* Find(std::string_view name) const;
};

// Parses `text`, read from `path` (used only in messages). A line that is none
// of the above, or a setting before any section, is InvalidArgument
// "PATH:LINE: ..."; the message never quotes the line (it may hold a secret).
Result<IniFile> ParseIni(std::string_view text, std::string_view path);

// Reads and parses the file at `path`: NotFound if it does not exist, IOError
// if it cannot be read.
Result<IniFile> ReadIniFile(const std::string& path);

}  // namespace virga::aws
