// Log-softmax with max subtraction; see log_softmax.h.
#include "engine/log_softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mlkv {

void LogSoftmax(std::span<const float> logits, std::span<float> out) {
  if (logits.empty()) return;
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  // Each term is exp(x - max) <= 1, so the sum lies in [1, n]: no overflow and, summed in
  // double, no loss from adding 50k small terms to a large one.
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max_logit);
  const double log_normalizer = static_cast<double>(max_logit) + std::log(sum);
  // Subtract in double and round once, so each result carries a single float rounding.
  for (size_t i = 0; i < logits.size(); ++i) {
    out[i] = static_cast<float>(static_cast<double>(logits[i]) - log_normalizer);
  }
}

std::vector<float> LogSoftmax(std::span<const float> logits) {
  std::vector<float> out(logits.size());
  LogSoftmax(logits, out);
  return out;
}

}  // namespace mlkv
