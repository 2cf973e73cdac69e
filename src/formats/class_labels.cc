// Class labels (ParseOptions::classes): a decorator over any format's parser
// that checks each row's label is a class number 0..classes-1.
#include <cmath>
#include <cstdio>
#include <string>

#include "formats/parsers.h"

namespace virga::formats {
namespace {

std::string Number(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(x));
  return buf;
}

class ClassLabelCheck final : public LineParser {
 public:
  ClassLabelCheck(std::unique_ptr<LineParser> inner, uint32_t classes)
      : inner_(std::move(inner)), classes_(classes) {}

  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    VIRGA_RETURN_IF_ERROR(inner_->ParseLine(line, out, added));
    if (!*added) return Status::OK();
    const float label = out->labels().back();
    if (label >= 0 && label < static_cast<float>(classes_) && label == std::floor(label)) {
      return Status::OK();
    }
    out->PopRow();
    *added = false;
    return Status::InvalidArgument("label " + Number(label) + " is not a class of 0.." +
                                   std::to_string(classes_ - 1) + " (--classes " +
                                   std::to_string(classes_) + ")");
  }
  uint64_t index_bound() const override { return inner_->index_bound(); }

 private:
  std::unique_ptr<LineParser> inner_;
  const uint32_t classes_;
};

}  // namespace

std::unique_ptr<LineParser> NewClassLabelCheck(std::unique_ptr<LineParser> inner,
                                               uint32_t classes) {
  return std::make_unique<ClassLabelCheck>(std::move(inner), classes);
}

}  // namespace virga::formats
