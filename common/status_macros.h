// Early-return helpers for absl::Status / absl::StatusOr: Debian's Abseil ships none.
#ifndef MLKV_COMMON_STATUS_MACROS_H_
#define MLKV_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MLKV_CONCAT_INNER_(a, b) a##b
#define MLKV_CONCAT_(a, b) MLKV_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status mlkv_status_ = (expr);        \
    if (!mlkv_status_.ok()) return mlkv_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from the value, or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  MLKV_ASSIGN_OR_RETURN_IMPL_(MLKV_CONCAT_(mlkv_statusor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `statusor` is a name and `lhs` a declaration
// (`auto x`); parentheses would not compile.
#define MLKV_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // MLKV_COMMON_STATUS_MACROS_H_
