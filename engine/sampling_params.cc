// Range checks for SamplingParams; see sampling_params.h.
#include "engine/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace mlkv {
namespace {

// Every message starts with the field's name as spelled in the struct, so that a client can tell
// which of its request fields to fix.
absl::Status FieldError(const char* field, const char* rule, float value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must ", rule, ", got ", value));
}

}  // namespace

absl::Status SamplingParams::Validate() const {
  // The comparisons are written so that NaN fails them: every NaN is refused.
  if (!(std::isfinite(temperature) && temperature >= 0.0f)) {
    return FieldError("temperature", "be finite and >= 0", temperature);
  }
  if (top_k < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be >= 0 (0 = all tokens), got ", top_k));
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) return FieldError("top_p", "be in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return FieldError("min_p", "be in [0, 1]", min_p);
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f)) {
    return FieldError("repetition_penalty", "be finite and > 0", repetition_penalty);
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    return FieldError("presence_penalty", "be in [-2, 2]", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    return FieldError("frequency_penalty", "be in [-2, 2]", frequency_penalty);
  }
  return absl::OkStatus();
}

}  // namespace mlkv
