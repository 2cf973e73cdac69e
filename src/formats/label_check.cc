// LabelCheck (include/virga/parser.h): the label rule of a declared task,
// and the decorator that applies it to any format's parser.
#include <cmath>
#include <cstdio>
#include <string>

#include "formats/parsers.h"

namespace virga {
namespace {

std::string Number(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(x));
  return buf;
}

// Largest class number without --classes: floats hold integers exactly up to 2^24.
constexpr float kMaxClass = 16777215.0f;

}  // namespace

Result<LabelTask> ParseLabelTaskName(std::string_view name) {
  if (name == "any") return LabelTask::kAny;
  if (name == "binary") return LabelTask::kBinary;
  if (name == "regression") return LabelTask::kRegression;
  if (name == "multiclass") return LabelTask::kMulticlass;
  return Status::InvalidArgument("task '" + std::string(name) +
                                 "': expected any, binary, regression or multiclass");
}

const char* LabelTaskName(LabelTask task) {
  switch (task) {
    case LabelTask::kAny: return "any";
    case LabelTask::kBinary: return "binary";
    case LabelTask::kRegression: return "regression";
    case LabelTask::kMulticlass: return "multiclass";
  }
  return "any";
}

Result<LabelCheck> LabelCheck::Make(const ParseOptions& o) {
  if (o.classes > 0 && o.task != LabelTask::kAny && o.task != LabelTask::kMulticlass) {
    return Status::InvalidArgument(std::string("--classes ") + std::to_string(o.classes) +
                                   " declares a multiclass task, not " + LabelTaskName(o.task));
  }
  return LabelCheck(o.classes > 0 ? LabelTask::kMulticlass : o.task, o.classes);
}

Status LabelCheck::Check(float label) {
  switch (task_) {
    case LabelTask::kAny:
    case LabelTask::kRegression:  // the parsers refuse NaN and infinite labels already
      return Status::OK();
    case LabelTask::kBinary: {
      if (label != 0 && label != 1 && label != -1) {
        return Status::InvalidArgument("label " + Number(label) +
                                       " is not binary (0/1 or -1/+1; --task binary)");
      }
      if (label == 1) return Status::OK();
      if (negative_ == 1) negative_ = label;
      if (label == negative_) return Status::OK();
      return Status::InvalidArgument("label " + Number(label) + " mixes " +
                                     (label == 0 ? "0/1 with the -1/+1" : "-1/+1 with the 0/1") +
                                     " labels of earlier lines (--task binary)");
    }
    case LabelTask::kMulticlass: {
      const float top = classes_ > 0 ? static_cast<float>(classes_ - 1) : kMaxClass;
      if (label >= 0 && label <= top && label == std::floor(label)) return Status::OK();
      if (classes_ > 0) {
        return Status::InvalidArgument("label " + Number(label) + " is not a class of 0.." +
                                       std::to_string(classes_ - 1) + " (--classes " +
                                       std::to_string(classes_) + ")");
      }
      return Status::InvalidArgument("label " + Number(label) +
                                     " is not a class number (an integer >= 0; --task multiclass)");
    }
  }
  return Status::OK();
}

namespace formats {
namespace {

class LabelCheckParser final : public LineParser {
 public:
  LabelCheckParser(std::unique_ptr<LineParser> inner, LabelCheck check)
      : inner_(std::move(inner)), check_(check) {}

  Status ParseLine(std::string_view line, RowBlock* out, bool* added) override {
    VIRGA_RETURN_IF_ERROR(inner_->ParseLine(line, out, added));
    if (!*added) return Status::OK();
    Status s = check_.Check(out->labels().back());
    if (s.ok()) return s;
    out->PopRow();
    *added = false;
    return s;
  }
  uint64_t index_bound() const override { return inner_->index_bound(); }

 private:
  std::unique_ptr<LineParser> inner_;
  LabelCheck check_;
};

}  // namespace

std::unique_ptr<LineParser> NewLabelCheck(std::unique_ptr<LineParser> inner, LabelCheck check) {
  return std::make_unique<LabelCheckParser>(std::move(inner), check);
}

}  // namespace formats
}  // namespace virga
