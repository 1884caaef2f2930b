// Per-request sampling settings, as a request or the command line gives them.
#ifndef MLKV_ENGINE_SAMPLING_PARAMS_H_
#define MLKV_ENGINE_SAMPLING_PARAMS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace mlkv {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = 0;                // 0 = all tokens
  float top_p = 1.0f;               // nucleus mass, (0, 1]
  float min_p = 0.0f;               // keep tokens with p >= min_p * p_max, [0, 1]
  float repetition_penalty = 1.0f;  // > 0; 1 = off (prompt and output tokens, as HF)
  float presence_penalty = 0.0f;    // [-2, 2]; output tokens only, as OpenAI / vLLM
  float frequency_penalty = 0.0f;   // [-2, 2]; output tokens only
  std::optional<uint64_t> seed;     // reproduces a sampled output exactly

  // InvalidArgument naming the field when a value is out of range.
  absl::Status Validate() const;
  bool is_greedy() const { return temperature == 0.0f; }
  // Greedy and no penalty: the token is the argmax of the raw logits, which a backend finds where
  // the logits are (Backend::ArgmaxRows) without copying the row to the host.
  bool is_plain_greedy() const { return is_greedy() && !has_penalties(); }
  // Whether a penalty depends on the tokens seen so far; without one a draw needs only the
  // logits, and a backend can take it where they are (Backend::SampleRows).
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_SAMPLING_PARAMS_H_
