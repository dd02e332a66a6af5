// Results as values: Error, Expected<T> and Callback<T>, used across every layer.
//
// Exceptions never cross a thread or an async boundary; code that can fail returns Expected<T>,
// and asynchronous work reports through a Callback<T> that is called exactly once.
#pragma once

#include <cassert>
#include <functional>
#include <string>
#include <utility>
#include <variant>

namespace ghostline {

enum class ErrorCode {
  InvalidArgument,  // bad input from the caller: a malformed file, a cursor out of range
  NotFound,         // a file, document, tensor or model that does not exist
  Unsupported,      // an architecture, dtype or option this build does not handle
  Cancelled,        // the request was cancelled or superseded
  ResourceExhausted,// out of KV blocks, memory or a time budget
  Io,               // a read or write failed
  Internal,         // a bug: an invariant did not hold
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;

  Error() = default;
  Error(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}
};

// Expected<T>: a T or an Error. Checked with `if (!r)`, read with `*r` / `r->`, `r.error()`.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Expected(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  explicit operator bool() const { return v_.index() == 0; }
  bool has_value() const { return v_.index() == 0; }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { assert(!has_value()); return std::get<1>(v_); }
  Error&& error() && { assert(!has_value()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Expected<void>: success or an Error.
template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}

  explicit operator bool() const { return ok_; }
  bool has_value() const { return ok_; }
  const Error& error() const& { assert(!ok_); return error_; }
  Error&& error() && { assert(!ok_); return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

inline Expected<void> ok() { return {}; }

inline Error make_error(ErrorCode code, std::string message) { return Error(code, std::move(message)); }

// Called exactly once, with a value or an error, possibly on another thread.
template <typename T>
using Callback = std::function<void(Expected<T>)>;

}  // namespace ghostline
