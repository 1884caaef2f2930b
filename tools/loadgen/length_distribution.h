// Prompt and output lengths drawn from a distribution named on the command line, so that a load
// test can mix short and long requests the way real traffic does.
#ifndef MLKV_TOOLS_LOADGEN_LENGTH_DISTRIBUTION_H_
#define MLKV_TOOLS_LOADGEN_LENGTH_DISTRIBUTION_H_

#include <cstdint>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mlkv::loadgen {

// One of:
//   N                   every length is N
//   uniform:A:B         uniform over the integers A..B (inclusive)
//   normal:MEAN:STD     normal, rounded
//   lognormal:MEAN:SIGMA  log-normal with mean MEAN tokens and shape SIGMA (the standard
//                       deviation of the log), rounded: a long right tail, as in chat traffic
// Samples are clamped to [1, kMaxLength]: a request always has at least one token.
class LengthDistribution {
 public:
  static constexpr int64_t kMaxLength = 1 << 24;

  // `flag` names the flag in error messages.
  static absl::StatusOr<LengthDistribution> Parse(absl::string_view flag, absl::string_view text);

  int64_t Sample(std::mt19937_64& rng) const;
  // The text it was parsed from, for summaries.
  const std::string& spec() const { return spec_; }

 private:
  enum class Kind { kFixed, kUniform, kNormal, kLognormal };

  Kind kind_ = Kind::kFixed;
  double a_ = 1;  // fixed: the length; uniform: A; normal: mean; lognormal: mu of the log
  double b_ = 0;  // uniform: B; normal: std; lognormal: sigma
  std::string spec_;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_LENGTH_DISTRIBUTION_H_
