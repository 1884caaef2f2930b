// Philox4x32-10 against the known-answer vectors published with Random123 (its
// tests/kat_vectors, "philox4x32 10" lines), and PhiloxUniform's mapping of seed and index.
#include "common/philox.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace mlkv {
namespace {

void ExpectBlock(const PhiloxBlock& got, const PhiloxBlock& want) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(got.words[i], want.words[i]) << "word " << i;
  }
}

TEST(PhiloxTest, KnownAnswerZeros) {
  ExpectBlock(Philox4x32_10({{0u, 0u, 0u, 0u}}, {{0u, 0u}}),
              {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
}

TEST(PhiloxTest, KnownAnswerAllOnes) {
  ExpectBlock(Philox4x32_10({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
                            {{0xffffffffu, 0xffffffffu}}),
              {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
}

TEST(PhiloxTest, KnownAnswerDigitsOfPi) {
  ExpectBlock(Philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
                            {{0xa4093822u, 0x299f31d0u}}),
              {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

// Seed 0, index 0 is the all-zero known answer: words 1 and 0 make the 64 bits.
TEST(PhiloxTest, UniformTakesTheTop53BitsOfWords1And0) {
  const uint64_t bits = (uint64_t{0xe169c58du} << 32) | 0x6627e8d5u;
  EXPECT_EQ(PhiloxUniform(0, 0), static_cast<double>(bits >> 11) / 9007199254740992.0);  // 2^53
}

// The seed's low half is key word 0 and the index's low half counter word 0.
TEST(PhiloxTest, UniformPutsLowHalvesFirst) {
  const PhiloxBlock out =
      Philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0u, 0u}}, {{0xa4093822u, 0x299f31d0u}});
  const uint64_t bits = (uint64_t{out.words[1]} << 32) | out.words[0];
  EXPECT_EQ(PhiloxUniform(0x299f31d0a4093822u, 0x85a308d3243f6a88u),
            static_cast<double>(bits >> 11) / 9007199254740992.0);
}

TEST(PhiloxTest, UniformStaysInTheUnitIntervalWithMeanOneHalf) {
  constexpr int kDraws = 100000;
  double sum = 0.0;
  for (uint64_t index = 0; index < kDraws; ++index) {
    const double u = PhiloxUniform(42, index);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // The mean of n uniforms has standard deviation 1 / sqrt(12 n) ~ 0.0009: 5 of them.
  EXPECT_NEAR(sum / kDraws, 0.5, 0.0046);
}

}  // namespace
}  // namespace mlkv
