// The vectorisable exp/erf/tanh against libm over their whole useful range.
#include "kernels/cpu/vector_math.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace mlkv::cpu {
namespace {

TEST(VectorMathTest, ExpHasSmallRelativeError) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double expected = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(FastExp(x) - expected) / expected);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(FastExp(0.0f), 1.0f);
  EXPECT_EQ(FastExp(-1000.0f), 0.0f);
  EXPECT_EQ(FastExp(-std::numeric_limits<float>::infinity()), 0.0f);
}

TEST(VectorMathTest, ErfAndTanhHaveSmallAbsoluteError) {
  double worst_erf = 0.0, worst_tanh = 0.0;
  for (float x = -12.0f; x <= 12.0f; x += 0.00113f) {
    worst_erf = std::max(worst_erf, std::abs(FastErf(x) - std::erf(static_cast<double>(x))));
    worst_tanh = std::max(worst_tanh, std::abs(FastTanh(x) - std::tanh(static_cast<double>(x))));
  }
  EXPECT_LT(worst_erf, 5e-7);
  EXPECT_LT(worst_tanh, 2e-7);
  EXPECT_EQ(FastTanh(100.0f), 1.0f);
  EXPECT_EQ(FastErf(-100.0f), -1.0f);
}

}  // namespace
}  // namespace mlkv::cpu
