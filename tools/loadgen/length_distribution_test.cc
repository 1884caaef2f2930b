// Length distributions: parsing, bad specs, and sample means.
#include "tools/loadgen/length_distribution.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

using ::testing::HasSubstr;

double MeanOf(const LengthDistribution& d, int n, int64_t* min_seen, int64_t* max_seen) {
  std::mt19937_64 rng(7);
  double sum = 0;
  *min_seen = INT64_MAX;
  *max_seen = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t x = d.Sample(rng);
    sum += static_cast<double>(x);
    *min_seen = std::min(*min_seen, x);
    *max_seen = std::max(*max_seen, x);
  }
  return sum / n;
}

TEST(LengthDistributionTest, FixedAlwaysGivesItsLength) {
  auto d = LengthDistribution::Parse("input-len", "37");
  ASSERT_TRUE(d.ok()) << d.status();
  int64_t lo = 0, hi = 0;
  EXPECT_EQ(MeanOf(*d, 100, &lo, &hi), 37);
  EXPECT_EQ(lo, 37);
  EXPECT_EQ(d->spec(), "37");
}

TEST(LengthDistributionTest, UniformCoversItsRangeInclusive) {
  auto d = LengthDistribution::Parse("input-len", "uniform:10:20");
  ASSERT_TRUE(d.ok()) << d.status();
  int64_t lo = 0, hi = 0;
  EXPECT_NEAR(MeanOf(*d, 20000, &lo, &hi), 15, 0.2);
  EXPECT_EQ(lo, 10);
  EXPECT_EQ(hi, 20);
}

TEST(LengthDistributionTest, NormalHasItsMean) {
  auto d = LengthDistribution::Parse("output-len", "normal:200:20");
  ASSERT_TRUE(d.ok()) << d.status();
  int64_t lo = 0, hi = 0;
  EXPECT_NEAR(MeanOf(*d, 20000, &lo, &hi), 200, 1.0);
}

TEST(LengthDistributionTest, LognormalHasItsMeanAndARightTail) {
  auto d = LengthDistribution::Parse("output-len", "lognormal:100:0.5");
  ASSERT_TRUE(d.ok()) << d.status();
  int64_t lo = 0, hi = 0;
  EXPECT_NEAR(MeanOf(*d, 50000, &lo, &hi), 100, 2.0);
  EXPECT_GT(hi - 100, 100 - lo);  // skewed right
}

TEST(LengthDistributionTest, ZeroSpreadIsFixed) {
  for (const char* spec : {"normal:50:0", "lognormal:50:0"}) {
    auto d = LengthDistribution::Parse("input-len", spec);
    ASSERT_TRUE(d.ok()) << d.status();
    int64_t lo = 0, hi = 0;
    EXPECT_EQ(MeanOf(*d, 10, &lo, &hi), 50) << spec;
  }
}

TEST(LengthDistributionTest, SamplesAreAtLeastOne) {
  auto d = LengthDistribution::Parse("input-len", "normal:1:50");
  ASSERT_TRUE(d.ok());
  int64_t lo = 0, hi = 0;
  MeanOf(*d, 1000, &lo, &hi);
  EXPECT_EQ(lo, 1);
}

TEST(LengthDistributionTest, BadSpecsNameTheFlag) {
  for (const char* spec : {"", "0", "-3", "abc", "uniform:5", "uniform:9:3", "uniform:0:3",
                           "uniform:1.5:3", "normal:0:1", "normal:5:-1", "lognormal:x:1",
                           "poisson:3:4", "normal:5:nan", "99999999999"}) {
    auto d = LengthDistribution::Parse("output-len", spec);
    ASSERT_FALSE(d.ok()) << spec;
    EXPECT_THAT(d.status().message(), HasSubstr("--output-len")) << spec;
  }
}

}  // namespace
}  // namespace mlkv::loadgen
