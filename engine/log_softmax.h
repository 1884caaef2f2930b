// Numerically stable log-probabilities over a vocabulary, for scoring and returned logprobs.
#ifndef MLKV_ENGINE_LOG_SOFTMAX_H_
#define MLKV_ENGINE_LOG_SOFTMAX_H_

#include <cstdint>
#include <span>

namespace mlkv {

// log(sum_j exp(logits[j])), computed around the largest logit so that no exp overflows (logits
// of 1e4 are fine) and summed in double. The log-probability of token i is logits[i] minus this:
// one pass over the vocabulary and no allocation, all a sampled token's logprob needs. The exps
// are float32 polynomials (relative error < 3e-7) so that the pass vectorises: with a 50k
// vocabulary it costs microseconds, where libm's exp took about 0.5 ms a row on the host's
// critical path of every decode step. Expects at least one finite logit and no +inf or NaN; a
// -inf logit (a masked token) adds nothing.
double LogSumExp(std::span<const float> logits);

// logits[token] - LogSumExp(logits): the log-probability of `token`, rounded once to float. A -inf
// logit gets -inf.
float LogProbability(std::span<const float> logits, int32_t token);

}  // namespace mlkv

#endif  // MLKV_ENGINE_LOG_SOFTMAX_H_
