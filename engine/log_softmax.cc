// Log-softmax with max subtraction; see log_softmax.h.
#include "engine/log_softmax.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/vector_math.h"

namespace mlkv {

double LogSumExp(std::span<const float> logits) {
  const float* x = logits.data();
  const size_t n = logits.size();
  float max_logit = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max_logit)
  for (size_t i = 0; i < n; ++i) max_logit = x[i] > max_logit ? x[i] : max_logit;
  // Each term is exp(x - max) <= 1, so the sum lies in [1, n]: no overflow and, summed in
  // double, no loss from adding 50k small terms to a large one. FastExp clamps -inf to about
  // 1e-38, which no sum of a vocabulary's terms can notice.
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(cpu::FastExp(x[i] - max_logit));
  return static_cast<double>(max_logit) + std::log(sum);
}

float LogProbability(std::span<const float> logits, int32_t token) {
  // Subtracted in double, so the result carries a single float rounding.
  return static_cast<float>(static_cast<double>(logits[token]) - LogSumExp(logits));
}

}  // namespace mlkv
