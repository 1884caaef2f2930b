// CHECK for broken invariants (never for bad input, which gets an absl::Status): logs the
// condition and a formatted message, then aborts. Debian's Abseil has no absl/log.
#ifndef MLKV_COMMON_CHECK_H_
#define MLKV_COMMON_CHECK_H_

#include <cstdlib>

#include "spdlog/spdlog.h"

// MLKV_CHECK(cond, "fmt {}", args...): the message uses spdlog's (fmt) syntax.
#define MLKV_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) {                                                               \
      spdlog::critical("{}:{}: check failed: {}: {}", __FILE__, __LINE__, #cond, \
                       fmt::format(__VA_ARGS__));                                \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

#endif  // MLKV_COMMON_CHECK_H_
