// Arrival gaps: mean 1/rate, burstiness as the spread, infinite rate all at once.
#include "tools/loadgen/arrival_process.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

struct Moments {
  double mean, cv;  // coefficient of variation: std / mean
};

Moments GapMoments(double rate, double burstiness) {
  ArrivalProcess arrivals(rate, burstiness, 11);
  std::vector<double> gaps(50000);
  double sum = 0;
  for (double& g : gaps) sum += g = arrivals.NextGapSeconds();
  const double mean = sum / gaps.size();
  double var = 0;
  for (double g : gaps) var += (g - mean) * (g - mean);
  return {mean, std::sqrt(var / gaps.size()) / mean};
}

TEST(ArrivalProcessTest, PoissonGapsAreExponential) {
  const Moments m = GapMoments(20, 1);
  EXPECT_NEAR(m.mean, 0.05, 0.001);
  EXPECT_NEAR(m.cv, 1.0, 0.03);  // an exponential's std equals its mean
}

TEST(ArrivalProcessTest, BurstinessChangesTheSpreadNotTheMean) {
  const Moments bursty = GapMoments(20, 0.25), even = GapMoments(20, 4);
  EXPECT_NEAR(bursty.mean, 0.05, 0.002);
  EXPECT_NEAR(even.mean, 0.05, 0.001);
  EXPECT_NEAR(bursty.cv, 2.0, 0.1);  // gamma: cv = 1 / sqrt(shape)
  EXPECT_NEAR(even.cv, 0.5, 0.02);
}

TEST(ArrivalProcessTest, InfiniteRateSendsAllAtOnce) {
  ArrivalProcess arrivals(std::numeric_limits<double>::infinity(), 1, 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(arrivals.NextGapSeconds(), 0.0);
}

TEST(ArrivalProcessTest, SameSeedSameGaps) {
  ArrivalProcess a(5, 1, 9), b(5, 1, 9);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.NextGapSeconds(), b.NextGapSeconds());
}

}  // namespace
}  // namespace mlkv::loadgen
