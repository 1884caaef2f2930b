// LogSumExp and LogProbability against a direct double-precision computation, including logits
// large enough that a naive exp would overflow.
#include "engine/log_softmax.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mlkv {
namespace {

// The textbook formula in double with libm's exp, safe only for logits whose exp fits in a double.
double DirectLogSumExp(const std::vector<float>& logits) {
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x));
  return std::log(sum);
}

TEST(LogSoftmaxTest, MatchesDirectDoubleComputation) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(50304);
  for (float& x : logits) x = normal(rng);
  const double want = DirectLogSumExp(logits);
  // FastExp's relative error (< 3e-7) moves the sum, hence its log, by at most that much.
  EXPECT_NEAR(LogSumExp(logits), want, 3e-7);
  for (size_t i = 0; i < logits.size(); i += 97) {
    // One float rounding of a value of magnitude up to ~40, plus the normalizer's error.
    const double logprob = static_cast<double>(logits[i]) - want;
    ASSERT_NEAR(LogProbability(logits, static_cast<int32_t>(i)), logprob,
                3e-7 + 6e-8 * std::abs(logprob))
        << "at " << i;
  }
}

TEST(LogSoftmaxTest, OddSizesAndSingleToken) {
  // Sizes around the vector width, so that the vectorised loops' remainders are covered.
  for (size_t n : {1, 2, 7, 15, 16, 17, 33, 1001}) {
    std::vector<float> logits(n);
    for (size_t i = 0; i < n; ++i) logits[i] = std::sin(static_cast<float>(i)) * 3.0f;
    EXPECT_NEAR(LogSumExp(logits), DirectLogSumExp(logits), 1e-6) << "size " << n;
  }
  EXPECT_EQ(LogProbability(std::vector<float>{5.0f}, 0), 0.0f);
}

TEST(LogSoftmaxTest, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1e4f, 1e4f - 1.0f, 0.0f, -1e4f, 1e4f};
  // By hand: normalizer = 1e4 + log(2 + e^-1) (the other terms are below double precision).
  const double normalizer = 1e4 + std::log(2.0 + std::exp(-1.0));
  EXPECT_NEAR(LogSumExp(logits), normalizer, 1e-6 * normalizer);
  double mass = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float got = LogProbability(logits, static_cast<int32_t>(i));
    ASSERT_TRUE(std::isfinite(got)) << "at " << i;
    EXPECT_NEAR(got, static_cast<double>(logits[i]) - normalizer,
                1e-6 * std::max(1.0, std::abs(static_cast<double>(logits[i]) - normalizer)));
    mass += std::exp(static_cast<double>(got));
  }
  EXPECT_NEAR(mass, 1.0, 1e-6);
}

TEST(LogSoftmaxTest, MaskedTokensGetMinusInfinity) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {kNegInf, 0.0f, kNegInf, 0.0f};
  EXPECT_NEAR(LogSumExp(logits), std::log(2.0), 1e-7);
  EXPECT_EQ(LogProbability(logits, 0), kNegInf);
  EXPECT_EQ(LogProbability(logits, 2), kNegInf);
  EXPECT_NEAR(LogProbability(logits, 1), std::log(0.5), 1e-7);
  EXPECT_NEAR(LogProbability(logits, 3), std::log(0.5), 1e-7);
}

}  // namespace
}  // namespace mlkv
