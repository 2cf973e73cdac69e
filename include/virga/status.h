// Status and Result<T>: how every fallible call in virga reports failure.
//
// A Status is either OK (cheap: no allocation) or a code plus a message that
// names what failed (a file and line, an object key, a field). Faults in
// storage, the network or input data are values, never crashes or exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace virga {

class Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kInvalidArgument,   // bad input from a user or a file (names file:line or field)
    kNotFound,          // object, key, table or file does not exist
    kCorruption,        // stored data fails its checksum, is truncated or malformed
    kIOError,           // the OS or a storage service failed
    kOutOfRange,        // a read past the end, an index beyond its bound
    kAlreadyExists,
    kUnavailable,       // a peer is unreachable; retrying may help
    kDeadlineExceeded,  // a timeout
    kCancelled,         // stopped on request
    kResourceExhausted, // a size or memory cap was hit
    kUnauthenticated,
    kInternal,          // a broken invariant in virga itself
  };

  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) { return {Code::kDeadlineExceeded, std::move(m)}; }
  static Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }

  // "Corruption: datasets/x/train/part-00003: checksum mismatch"
  std::string ToString() const;

  // Returns a copy whose message is `prefix + ": " + message()`; OK stays OK.
  Status WithContext(std::string_view prefix) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);

// Either a T or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) v_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // REQUIRES: !ok() for a meaningful status; returns OK when a value is held.
  Status status() const { return ok() ? Status::OK() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace virga

#define VIRGA_CONCAT_INNER_(a, b) a##b
#define VIRGA_CONCAT_(a, b) VIRGA_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define VIRGA_RETURN_IF_ERROR(expr)                   \
  do {                                                \
    ::virga::Status virga_status_ = (expr);           \
    if (!virga_status_.ok()) return virga_status_;    \
  } while (0)

// `lhs = value of expr` or return its Status. `lhs` may declare a variable.
#define VIRGA_ASSIGN_OR_RETURN(lhs, expr) \
  VIRGA_ASSIGN_OR_RETURN_IMPL_(VIRGA_CONCAT_(virga_result_, __LINE__), lhs, expr)
#define VIRGA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
