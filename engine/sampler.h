// Next-token sampling for one sequence: penalties, temperature, top-k / top-p / min-p and a seeded
// draw whose result depends only on the sequence's own seed and logits.
#ifndef MLKV_ENGINE_SAMPLER_H_
#define MLKV_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>

#include "engine/sampling_params.h"

namespace mlkv {

// Applies the penalties of `params` to `logits` in place, in this order (as HF and vLLM do):
//   1. repetition, HF style, once per distinct token of prompt + output:
//        logit > 0 ? logit / repetition_penalty : logit * repetition_penalty
//   2. presence and frequency, OpenAI style, per token seen `count` > 0 times in the output:
//        logit -= presence_penalty + frequency_penalty * count
// Every token id must lie in [0, logits.size()); the process aborts otherwise (a broken invariant:
// the tokens came from this vocabulary). Costs O(n log n) in the number of tokens, nothing when
// the penalties are off.
void ApplyPenalties(const SamplingParams& params, std::span<float> logits,
                    std::span<const int32_t> prompt_tokens, std::span<const int32_t> output_tokens);

// Draws the next tokens of one sequence. It owns its random stream, so that the same seed and the
// same logits give the same tokens whichever other sequences share the batch; keep it with the
// request across preemption so that a recomputed sequence continues the same stream.
//
// Per call, after ApplyPenalties:
//   temperature == 0: argmax, the lowest token id on ties; no random number is drawn.
//   otherwise:        p ~ exp((logit - max) / temperature); keep the top_k (0 = all); keep the
//                     smallest highest-probability set holding top_p of what is left; keep
//                     p >= min_p * p_max; draw from what is kept, renormalized.
// Filters rank tokens by logit, the lower token id first on ties, so top_k = 1 is greedy. The
// selection and the draw are the sampler's own code, so a seed gives the same tokens with any
// standard library (up to the last bit of libm's expf). -inf and NaN logits are never drawn
// (unless the whole row is: then the argmax rule answers).
// Cost for a 50k vocabulary: O(vocab) passes and no full sort (see sampler.cc).
//
// Not thread-safe: one sampler per sequence, used by one thread at a time.
class SequenceSampler {
 public:
  // `params` must have passed Validate(). The stream is seeded from params.seed when it is set,
  // else from `default_seed` (e.g. the engine's per-request seed).
  SequenceSampler(const SamplingParams& params, uint64_t default_seed);

  // Returns the next token, in [0, logits.size()). `logits` (the model's output row for this
  // sequence; not empty) is used as scratch: its contents are unspecified afterwards.
  // `prompt_tokens` and `output_tokens` feed the penalties only.
  int32_t Sample(std::span<float> logits, std::span<const int32_t> prompt_tokens,
                 std::span<const int32_t> output_tokens);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  // mt19937_64's output sequence is fixed by the C++ standard; Sample turns it into doubles itself
  // rather than through std::uniform_real_distribution, whose algorithm is not.
  std::mt19937_64 rng_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_SAMPLER_H_
