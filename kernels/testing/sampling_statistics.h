// Test helper: expected distributions, Pearson's goodness-of-fit statistic and the brute-force
// set of tokens the filters keep, for the tests of both samplers (the host's in
// engine/sampler_test.cc, the backend's in kernels/cpu/sample_rows_test.cc). For tests only.
#ifndef MLKV_KERNELS_TESTING_SAMPLING_STATISTICS_H_
#define MLKV_KERNELS_TESTING_SAMPLING_STATISTICS_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

namespace mlkv::testing {

// Logits whose softmax is `probs` (which need not sum to 1: softmax renormalises).
inline std::vector<float> LogitsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

inline std::vector<double> Softmax(const std::vector<float>& logits, double temperature) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs;
  for (float x : logits) probs.push_back(std::exp((x - max) / temperature));
  const double sum = std::accumulate(probs.begin(), probs.end(), 0.0);
  for (double& p : probs) p /= sum;
  return probs;
}

// Pearson's statistic over the tokens with expected mass; a token drawn outside them is a failure
// of its own, for the caller to report.
inline double ChiSquare(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  const double n = static_cast<double>(std::accumulate(counts.begin(), counts.end(), int64_t{0}));
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) continue;
    const double expected = n * probs[i];
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// The tokens that top-k, then top-p, then min-p keep, by a literal reading of their definition
// (engine/sampler.h, kernels/backend.h): every finite-or-+inf candidate sorted by rank (higher
// logit first, lower index on ties), the first top_k, the shortest prefix reaching top_p of their
// mass, those with probability >= min_p x the top token's. The row's maximum must be finite.
inline std::set<int32_t> BruteForceKept(const std::vector<float>& logits, float temperature,
                                        int32_t top_k, float top_p, float min_p) {
  std::vector<int32_t> order;
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    if (logits[i] > -std::numeric_limits<float>::infinity()) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (top_k > 0 && static_cast<size_t>(top_k) < order.size()) order.resize(top_k);
  const float max = logits[order[0]];
  auto p = [&](int32_t t) {
    return std::exp(static_cast<double>((logits[t] - max) / temperature));
  };
  double total = 0.0;
  for (int32_t t : order) total += p(t);
  std::set<int32_t> kept;
  double mass = 0.0;
  for (int32_t t : order) {
    if (p(t) >= min_p) kept.insert(t);
    mass += p(t);
    if (top_p < 1.0f && mass >= top_p * total) break;
  }
  return kept;
}

}  // namespace mlkv::testing

#endif  // MLKV_KERNELS_TESTING_SAMPLING_STATISTICS_H_
