// Ratings: "user item rating [timestamp]" separated by tab, comma or "::"
// (MovieLens u.data, ratings.csv, ml-1m ratings.dat). Each row is
// label = rating, features [2 * user, 2 * item + 1] with value 1, in that
// order: users and items get disjoint keys, so user 5 and item 5 never share
// a model's row. Rules: docs/formats.md.
#include <string>

#include "formats/number_parse.h"
#include "formats/parsers.h"

namespace virga::formats {
namespace {

// Ids map to indices 2 * id (users) and 2 * id + 1 (items), below 2^32.
constexpr uint32_t kMaxId = (uint32_t{1} << 31) - 1;
constexpr uint32_t UserKey(uint32_t user) { return 2 * user; }
constexpr uint32_t ItemKey(uint32_t item) { return 2 * item + 1; }

enum class Separator { kUnknown, kTab, kComma, kDoubleColon };

const char* SeparatorName(Separator s) {
  switch (s) {
    case Separator::kTab:
      return "tab";
    case Separator::kComma:
      return "','";
    case Separator::kDoubleColon:
      return "'::'";
    default:
      return "tab, ',' or '::'";
  }
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Splits `line` into at most 5 fields (a fifth means "too many"); returns the
// number of fields found, counting all of them.
size_t Split(std::string_view line, Separator sep, std::string_view* fields) {
  const std::string_view token = sep == Separator::kDoubleColon ? "::"
                                 : sep == Separator::kComma     ? ","
                                                                : "\t";
  size_t n = 0;
  while (true) {
    const size_t at = line.find(token);
    if (n < 5) fields[n] = TrimSpaces(line.substr(0, at));
    ++n;
    if (at == std::string_view::npos) return n;
    line.remove_prefix(at + token.size());
  }
}

std::string IdError(const char* what, uint32_t id) {
  return std::string(what) + " id " + std::to_string(id) + " out of range (ids are 0.." +
         std::to_string(kMaxId) + ")";
}

class RatingsParser final : public LineParser {
 public:
  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    *added = false;
    if (line.find_first_not_of(" \t") == std::string_view::npos) return Status::OK();
    const bool first = !started_;
    if (sep_ == Separator::kUnknown) sep_ = Detect(line);
    std::string_view f[5];
    const size_t n = sep_ == Separator::kUnknown ? 1 : Split(line, sep_, f);
    if (n < 3 || n > 4) {
      return Status::InvalidArgument(
          "expected 3 or 4 fields (user, item, rating[, timestamp]) separated by " +
          std::string(SeparatorName(sep_)) + ", found " + std::to_string(n));
    }
    started_ = true;
    float rating = 0;
    if (first && ParseFloat(f[0], &rating) == NumStatus::kBad) {
      return Status::OK();  // a header such as "userId,movieId,rating,timestamp"
    }
    uint32_t user = 0;
    uint32_t item = 0;
    if (NumStatus st = ParseIndex(f[0], &user); st != NumStatus::kOk) {
      return Status::InvalidArgument(NumberError(st, "user id", f[0]));
    }
    if (NumStatus st = ParseIndex(f[1], &item); st != NumStatus::kOk) {
      return Status::InvalidArgument(NumberError(st, "item id", f[1]));
    }
    if (NumStatus st = ParseFloat(f[2], &rating); st != NumStatus::kOk) {
      return Status::InvalidArgument(NumberError(st, "rating", f[2]));
    }
    double timestamp = 0;
    if (n == 4) {
      if (NumStatus st = ParseDouble(f[3], &timestamp); st != NumStatus::kOk) {
        return Status::InvalidArgument(NumberError(st, "timestamp", f[3]));
      }
    }
    if (user > kMaxId) return Status::InvalidArgument(IdError("user", user));
    if (item > kMaxId) return Status::InvalidArgument(IdError("item", item));
    out->AddFeature(UserKey(user), 1.0f);
    out->AddFeature(ItemKey(item), 1.0f);
    out->EndRow(rating);
    *added = true;
    return Status::OK();
  }

  // Ids are not bounded by the format; the largest id seen + 1 decides.
  uint64_t index_bound() const override { return 0; }

 private:
  // The separator of the first line: "::" if present, else tab, else comma.
  static Separator Detect(std::string_view line) {
    if (line.find("::") != std::string_view::npos) return Separator::kDoubleColon;
    if (line.find('\t') != std::string_view::npos) return Separator::kTab;
    if (line.find(',') != std::string_view::npos) return Separator::kComma;
    return Separator::kUnknown;
  }

  Separator sep_ = Separator::kUnknown;  // fixed by the first non-blank line
  bool started_ = false;                 // a line with a valid field count was seen
};

}  // namespace

std::unique_ptr<LineParser> NewRatingsParser() { return std::make_unique<RatingsParser>(); }

}  // namespace virga::formats
