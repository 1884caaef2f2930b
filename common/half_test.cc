// Checks the 16-bit float conversions on known bit patterns and by exhaustive round trips.
#include "common/half.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace mlkv {
namespace {

TEST(HalfTest, F16KnownValues) {
  EXPECT_EQ(F16ToFloat(0x3c00), 1.0f);
  EXPECT_EQ(F16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(F16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(F16ToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(F16ToFloat(0x7e00)));
  EXPECT_EQ(FloatToF16(1.0f), 0x3c00);
  EXPECT_EQ(FloatToF16(65520.0f), 0x7c00);  // rounds up to infinity
  EXPECT_EQ(FloatToF16(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie goes to even (zero)
  EXPECT_EQ(FloatToF16(std::ldexp(3.0f, -25)), 0x0002);  // tie goes to even
  EXPECT_EQ(FloatToF16(-0.0f), 0x8000);
}

// Every binary16 value against its definition: (-1)^s 2^(e-15) (1 + m/1024), or 2^-14 m/1024
// for e = 0.
TEST(HalfTest, F16DecodesEveryValueByDefinition) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const float sign = (h & 0x8000) != 0 ? -1.0f : 1.0f;
    const float got = F16ToFloat(static_cast<uint16_t>(h));
    if (e == 0x1f) {
      ASSERT_EQ(std::isnan(got), m != 0) << "bits " << h;
      if (m == 0) {
        ASSERT_EQ(got, sign * std::numeric_limits<float>::infinity()) << "bits " << h;
      }
      continue;
    }
    const float want = e == 0 ? sign * std::ldexp(static_cast<float>(m), -24)
                              : sign * std::ldexp(1.0f + m / 1024.0f, static_cast<int>(e) - 15);
    ASSERT_EQ(got, want) << "bits " << h;
    ASSERT_EQ(std::signbit(got), (h & 0x8000) != 0) << "bits " << h;
  }
}

TEST(HalfTest, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = F16ToFloat(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToF16(f), bits) << "bits " << h;
  }
}

TEST(HalfTest, F16RoundsToNearestEven) {
  // 1 + 2^-11 lies exactly between 1 and the next f16 (1 + 2^-10): ties to even gives 1.
  EXPECT_EQ(FloatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 lies between 1 + 2^-10 (odd) and 1 + 2^-9 (even): goes up.
  EXPECT_EQ(FloatToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(FloatToF16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
}

TEST(HalfTest, Bf16RoundTripsAndRounds) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = Bf16ToFloat(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBf16(f), bits) << "bits " << h;
  }
  EXPECT_EQ(FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
  EXPECT_EQ(FloatToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
}

}  // namespace
}  // namespace mlkv
