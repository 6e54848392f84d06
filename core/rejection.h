#pragma once
// A rejection is an expected failure carried as a value: a stable machine code
// (documented in docs/error-codes.md) and a human message. Exceptions are kept
// for bugs and start-up failures that end the process.
#include <string>
#include <utility>
#include <variant>
#include <stdexcept>

namespace gridtrust {

struct Rejection {
  std::string code;
  std::string message;
};

// Exit code for the CLI and HTTP status for the daemon, both derived from the
// code's category so there is exactly one mapping.
int exit_code_for(const std::string& code);
int http_status_for(const std::string& code);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Rejection r) : v_(std::move(r)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    if (!ok()) throw std::logic_error("Result::value on rejection " + error().code);
    return std::get<0>(v_);
  }
  const T& value() const& {
    if (!ok()) throw std::logic_error("Result::value on rejection " + error().code);
    return std::get<0>(v_);
  }
  T&& value() && {
    if (!ok()) throw std::logic_error("Result::value on rejection " + error().code);
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Rejection& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Rejection> v_;
};

struct Ok {};
using Status = Result<Ok>;

inline Rejection reject(std::string code, std::string message) {
  return Rejection{std::move(code), std::move(message)};
}

}  // namespace gridtrust

// Propagates a rejection from an expression yielding Result<T>; binds the value.
#define GT_CONCAT_INNER(a, b) a##b
#define GT_CONCAT(a, b) GT_CONCAT_INNER(a, b)
#define GT_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                       \
  if (!tmp.ok()) return tmp.error();       \
  lhs = std::move(tmp).value()
#define GT_TRY_ASSIGN(lhs, expr) GT_TRY_ASSIGN_IMPL(GT_CONCAT(gt_try_, __LINE__), lhs, expr)
#define GT_TRY(expr)                                         \
  do {                                                       \
    auto gt_status_ = (expr);                                \
    if (!gt_status_.ok()) return gt_status_.error();         \
  } while (0)
