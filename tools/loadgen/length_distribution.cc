// Parsing and sampling of length distributions; see length_distribution.h.
#include "tools/loadgen/length_distribution.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mlkv::loadgen {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": ", why, " (got \"", text,
                   "\"; expected N, uniform:A:B, normal:MEAN:STD or lognormal:MEAN:SIGMA)"));
}

}  // namespace

absl::StatusOr<LengthDistribution> LengthDistribution::Parse(absl::string_view flag,
                                                             absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  LengthDistribution d;
  d.spec_ = std::string(text);
  if (parts.size() == 1) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(parts[0], &n)) return Bad(flag, text, "not a length");
    if (n < 1 || n > kMaxLength)
      return Bad(flag, text, absl::StrCat("must be in [1, ", kMaxLength, "]"));
    d.a_ = static_cast<double>(n);
    return d;
  }
  if (parts.size() != 3) return Bad(flag, text, "wrong number of fields");
  double x = 0, y = 0;
  if (!absl::SimpleAtod(parts[1], &x) || !absl::SimpleAtod(parts[2], &y) || !std::isfinite(x) ||
      !std::isfinite(y)) {
    return Bad(flag, text, "parameters must be numbers");
  }
  const bool spread = y > 0;  // a zero spread is a fixed length (the std:: samplers need > 0)
  if (parts[0] == "uniform") {
    if (x != std::floor(x) || y != std::floor(y) || x < 1 || y < x || y > kMaxLength) {
      return Bad(flag, text, "uniform needs integers 1 <= A <= B");
    }
    d.kind_ = Kind::kUniform;
    d.a_ = x;
    d.b_ = y;
  } else if (parts[0] == "normal") {
    if (x < 1 || y < 0) return Bad(flag, text, "normal needs MEAN >= 1 and STD >= 0");
    d.kind_ = spread ? Kind::kNormal : Kind::kFixed;
    d.a_ = x;
    d.b_ = y;
  } else if (parts[0] == "lognormal") {
    if (x < 1 || y < 0) return Bad(flag, text, "lognormal needs MEAN >= 1 and SIGMA >= 0");
    d.kind_ = spread ? Kind::kLognormal : Kind::kFixed;
    // E[exp(N(mu, s^2))] = exp(mu + s^2 / 2): pick mu so that the mean is MEAN tokens.
    d.a_ = spread ? std::log(x) - y * y / 2 : x;
    d.b_ = y;
  } else {
    return Bad(flag, text, absl::StrCat("unknown distribution \"", parts[0], "\""));
  }
  return d;
}

int64_t LengthDistribution::Sample(std::mt19937_64& rng) const {
  double x = 0;
  switch (kind_) {
    case Kind::kFixed:
      x = a_;
      break;
    case Kind::kUniform:
      x = static_cast<double>(std::uniform_int_distribution<int64_t>(
          static_cast<int64_t>(a_), static_cast<int64_t>(b_))(rng));
      break;
    case Kind::kNormal:
      x = std::normal_distribution<double>(a_, b_)(rng);
      break;
    case Kind::kLognormal:
      x = std::lognormal_distribution<double>(a_, b_)(rng);
      break;
  }
  return std::clamp<int64_t>(std::llround(std::min(x, static_cast<double>(kMaxLength))), 1,
                             kMaxLength);
}

}  // namespace mlkv::loadgen
