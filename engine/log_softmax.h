// Numerically stable log-probabilities over a vocabulary, for scoring and returned logprobs.
#ifndef MLKV_ENGINE_LOG_SOFTMAX_H_
#define MLKV_ENGINE_LOG_SOFTMAX_H_

#include <span>
#include <vector>

namespace mlkv {

// out[i] = logits[i] - log(sum_j exp(logits[j])), computed around the largest logit so that no
// exp overflows (logits of 1e4 are fine) and summed in double. `out` must have the size of
// `logits` and may be the same memory. A -inf logit (a masked token) gets -inf. Expects at least
// one finite logit and no +inf or NaN.
void LogSoftmax(std::span<const float> logits, std::span<float> out);

// Convenience form that allocates the result.
std::vector<float> LogSoftmax(std::span<const float> logits);

}  // namespace mlkv

#endif  // MLKV_ENGINE_LOG_SOFTMAX_H_
