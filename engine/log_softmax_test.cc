// LogSoftmax against a direct double-precision computation, including logits large enough that a
// naive exp would overflow.
#include "engine/log_softmax.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace mlkv {
namespace {

// The textbook formula in double, safe only for logits whose exp fits in a double.
std::vector<double> DirectLogSoftmax(const std::vector<float>& logits) {
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x));
  std::vector<double> out;
  for (float x : logits) out.push_back(static_cast<double>(x) - std::log(sum));
  return out;
}

TEST(LogSoftmaxTest, MatchesDirectDoubleComputation) {
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(50304);
  for (float& x : logits) x = normal(rng);
  const std::vector<float> got = LogSoftmax(logits);
  const std::vector<double> want = DirectLogSoftmax(logits);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    // One float rounding of a value of magnitude up to ~40.
    ASSERT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::abs(want[i]))) << "at " << i;
  }
}

TEST(LogSoftmaxTest, LargeLogitsDoNotOverflow) {
  const std::vector<float> logits = {1e4f, 1e4f - 1.0f, 0.0f, -1e4f, 1e4f};
  const std::vector<float> got = LogSoftmax(logits);
  // By hand: normalizer = 1e4 + log(2 + e^-1) (the other terms are below double precision).
  const double normalizer = 1e4 + std::log(2.0 + std::exp(-1.0));
  for (size_t i = 0; i < logits.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "at " << i;
    EXPECT_NEAR(got[i], static_cast<double>(logits[i]) - normalizer,
                1e-6 * std::max(1.0, std::abs(static_cast<double>(logits[i]) - normalizer)));
  }
  double mass = 0.0;
  for (float x : got) mass += std::exp(static_cast<double>(x));
  EXPECT_NEAR(mass, 1.0, 1e-6);
}

TEST(LogSoftmaxTest, MaskedTokensGetMinusInfinity) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const std::vector<float> got = LogSoftmax(std::vector<float>{kNegInf, 0.0f, kNegInf, 0.0f});
  EXPECT_EQ(got[0], kNegInf);
  EXPECT_EQ(got[2], kNegInf);
  EXPECT_NEAR(got[1], std::log(0.5), 1e-7);
  EXPECT_NEAR(got[3], std::log(0.5), 1e-7);
}

TEST(LogSoftmaxTest, WorksInPlace) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const std::vector<float> want = LogSoftmax(logits);
  LogSoftmax(logits, logits);
  EXPECT_EQ(logits, want);
}

}  // namespace
}  // namespace mlkv
