// The CPU SampleRows, the reference of Backend::SampleRows: draws that follow softmax over the
// temperature, the exact sets top-k / top-p / min-p keep (against a brute-force reading of the
// rule in kernels/backend.h), the index-order walk and its margin, seeded draws, masked and
// non-finite logits, and rows that do not affect each other. Like engine/sampler_test.cc, which
// tests the host sampler's equivalent filters.
#include "kernels/cpu/sample_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "common/philox.h"
#include "gtest/gtest.h"
#include "kernels/cpu/argmax.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/testing/sampling_statistics.h"

namespace mlkv {
namespace {

using testing::ChiSquare;
using testing::LogitsOf;
using testing::Softmax;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

RowSampling Sampling(float temperature, uint64_t seed = 1) {
  RowSampling params;
  params.temperature = temperature;
  params.seed = seed;
  return params;
}

int32_t Draw(const std::vector<float>& logits, RowSampling params, uint64_t draw) {
  params.draw = draw;
  return cpu::SampleRow(logits.data(), std::ssize(logits), params).token;
}

// Token counts over draws 0, 1, ..., draws - 1 of the row's stream.
std::vector<int64_t> Histogram(const std::vector<float>& logits, const RowSampling& params,
                               int draws) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int d = 0; d < draws; ++d) ++counts[Draw(logits, params, d)];
  return counts;
}

std::set<int32_t> DrawnTokens(const std::vector<float>& logits, const RowSampling& params,
                              int draws) {
  std::set<int32_t> drawn;
  for (int d = 0; d < draws; ++d) drawn.insert(Draw(logits, params, d));
  return drawn;
}

// The tokens SampleRows may draw (kernels/testing/sampling_statistics.h).
std::set<int32_t> BruteForceKept(const std::vector<float>& logits, const RowSampling& params) {
  return testing::BruteForceKept(logits, params.temperature, params.top_k, params.top_p,
                                 params.min_p);
}

// ---- The draw ----------------------------------------------------------------------------------

TEST(CpuSampleRowsTest, DrawsFollowSoftmaxOverTemperature) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    const std::vector<int64_t> counts = Histogram(logits, Sampling(temperature, 1234), 100000);
    // 5 degrees of freedom: a correct sampler exceeds 20.5 with probability 0.001.
    EXPECT_LT(ChiSquare(counts, Softmax(logits, temperature)), 20.5) << "T=" << temperature;
  }
}

// p = 1/3 for token 0 and 1 for token 1: walked in index order, token 0 takes u in [0, 1/4).
// (Walked in rank order it would take [3/4, 1).)
TEST(CpuSampleRowsTest, WalksTheKeptTokensInIndexOrder) {
  const std::vector<float> logits = {0.0f, std::log(3.0f)};
  const RowSampling params = Sampling(1.0f, 99);
  for (uint64_t draw = 0; draw < 1000; ++draw) {
    const double u = PhiloxUniform(params.seed, draw);
    if (std::fabs(u - 0.25) < 1e-6) continue;  // within float rounding of the boundary
    EXPECT_EQ(Draw(logits, params, draw), u < 0.25 ? 0 : 1) << "u " << u;
  }
}

// Four tokens of p = 1 among masked ones: the draw is the floor(4u)-th of them, exactly.
TEST(CpuSampleRowsTest, TheTokenIsWhereTheRunningMassPassesUTimesTheTotal) {
  const std::vector<float> logits = {0.0f, kNegInf, 0.0f, kNaN, 0.0f, 0.0f};
  const int32_t candidates[] = {0, 2, 4, 5};
  const RowSampling params = Sampling(0.7f, 5);
  for (uint64_t draw = 0; draw < 1000; ++draw) {
    const double u = PhiloxUniform(params.seed, draw);
    EXPECT_EQ(Draw(logits, params, draw), candidates[static_cast<int>(4 * u)]) << "u " << u;
  }
}

// With four tokens of p = 1 the boundaries are 1, 2, 3, 4 and every quantity is exact.
TEST(CpuSampleRowsTest, MarginIsTheDistanceToTheNearestBoundaryOverTheTotal) {
  const std::vector<float> logits(4, 0.5f);
  RowSampling params = Sampling(1.0f, 11);
  for (uint64_t draw = 0; draw < 100; ++draw) {
    params.draw = draw;
    const double target = 4 * PhiloxUniform(params.seed, draw);
    double want = std::numeric_limits<double>::infinity();
    for (double boundary : {1.0, 2.0, 3.0, 4.0}) {
      want = std::min(want, std::fabs(boundary - target));
    }
    EXPECT_EQ(cpu::SampleRow(logits.data(), 4, params).margin, want / 4) << "draw " << draw;
  }
}

// ---- Seeds and draws ---------------------------------------------------------------------------

std::vector<int32_t> DrawSequence(uint64_t seed, int n) {
  const std::vector<float> logits = LogitsOf({0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1});
  std::vector<int32_t> tokens;
  for (int d = 0; d < n; ++d) tokens.push_back(Draw(logits, Sampling(1.0f, seed), d));
  return tokens;
}

TEST(CpuSampleRowsTest, SameSeedAndDrawRepeatOthersDiffer) {
  const std::vector<int32_t> stream = DrawSequence(42, 200);
  EXPECT_EQ(DrawSequence(42, 200), stream);
  EXPECT_NE(DrawSequence(43, 200), stream);
  // The draw index moves along the stream: its tokens are not all one.
  EXPECT_GT(std::set<int32_t>(stream.begin(), stream.end()).size(), 4u);
}

// ---- Filters -----------------------------------------------------------------------------------

// Probabilities 0.5, 0.25, 0.15, 0.07, 0.03, scattered over the ids.
const std::vector<double> kProbs = {0.07, 0.25, 0.03, 0.5, 0.15};

TEST(CpuSampleRowsTest, TopKKeepsExactlyKLowerIndexFirstOnTies) {
  RowSampling params = Sampling(1.0f, 82);
  params.top_k = 3;
  EXPECT_EQ(DrawnTokens(std::vector<float>(100, 0.5f), params, 3000), (std::set<int32_t>{0, 1, 2}));
  params.top_k = 1;  // -0 and +0 are equal logits: the lower index
  EXPECT_EQ(DrawnTokens({-1.0f, -0.0f, 0.0f}, params, 100), (std::set<int32_t>{1}));
  EXPECT_EQ(DrawnTokens({-1.0f, 0.0f, -0.0f}, params, 100), (std::set<int32_t>{1}));
}

TEST(CpuSampleRowsTest, TopKOfOneIsTheArgmax) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  RowSampling params = Sampling(1.3f, 11);
  params.top_k = 1;
  for (int row = 0; row < 50; ++row) {
    std::vector<float> logits(1000);
    for (float& x : logits) x = normal(rng);
    if (row % 2 == 0) logits[row + 500] = logits[row + 7] = 20.0f;  // a tie for the max
    EXPECT_EQ(Draw(logits, params, row), cpu::ArgmaxRow(logits.data(), 1000)) << "row " << row;
  }
}

TEST(CpuSampleRowsTest, TopKAtOrAboveTheCandidatesKeepsThemAll) {
  const std::vector<float> logits = LogitsOf(kProbs);
  RowSampling params = Sampling(1.0f, 83);
  for (int32_t top_k : {5, 1000}) {
    params.top_k = top_k;
    // 4 degrees of freedom: 18.5 at probability 0.001.
    EXPECT_LT(ChiSquare(Histogram(logits, params, 50000), Softmax(logits, 1.0)), 18.5) << top_k;
  }
}

TEST(CpuSampleRowsTest, TopPKeepsTheShortestPrefixReachingTheMass) {
  RowSampling params = Sampling(1.0f, 77);
  params.top_p = 0.8f;  // 0.5 + 0.25 = 0.75 < 0.8 <= 0.9 = 0.5 + 0.25 + 0.15
  const std::vector<int64_t> counts = Histogram(LogitsOf(kProbs), params, 50000);
  EXPECT_EQ(counts[0] + counts[2], 0);
  // Within the kept set the draws follow the renormalised probabilities (2 dof: 13.8).
  EXPECT_LT(ChiSquare(counts, {0.0, 0.25 / 0.9, 0.0, 0.5 / 0.9, 0.15 / 0.9}), 13.8);
}

// Four equal logits, p = 1 each: exact sums. A prefix whose mass equals the threshold suffices.
TEST(CpuSampleRowsTest, TopPStopsWhereTheMassReachesTheThresholdExactly) {
  const std::vector<float> logits(4, 2.0f);
  RowSampling params = Sampling(1.0f, 78);
  params.top_p = 0.5f;  // threshold 2: the first two
  EXPECT_EQ(DrawnTokens(logits, params, 1000), (std::set<int32_t>{0, 1}));
  params.top_p = std::nextafter(0.5f, 1.0f);  // just past 2: three
  EXPECT_EQ(DrawnTokens(logits, params, 1000), (std::set<int32_t>{0, 1, 2}));
  params.top_p = 1e-6f;  // always at least the top token
  EXPECT_EQ(DrawnTokens(logits, params, 100), (std::set<int32_t>{0}));
}

TEST(CpuSampleRowsTest, TopPIsAShareOfWhatTopKKept) {
  // Over the top 2 the probabilities are 2/3 and 1/3: 2/3 >= 0.6 alone. Measured against the full
  // distribution, 0.5 < 0.6 would keep both.
  RowSampling params = Sampling(1.0f, 79);
  params.top_k = 2;
  params.top_p = 0.6f;
  EXPECT_EQ(DrawnTokens(LogitsOf(kProbs), params, 2000), (std::set<int32_t>{3}));
}

TEST(CpuSampleRowsTest, MinPKeepsTokensAboveAShareOfTheTop) {
  RowSampling params = Sampling(1.0f, 80);
  params.min_p = 0.2f;  // threshold 0.1: keeps 0.5, 0.25, 0.15
  const std::vector<int64_t> counts = Histogram(LogitsOf(kProbs), params, 50000);
  EXPECT_EQ(counts[0] + counts[2], 0);
  EXPECT_LT(ChiSquare(counts, {0.0, 0.25 / 0.9, 0.0, 0.5 / 0.9, 0.15 / 0.9}), 13.8);
  params.min_p = 0.99f;  // only the top
  EXPECT_EQ(DrawnTokens(LogitsOf(kProbs), params, 1000), (std::set<int32_t>{3}));
}

TEST(CpuSampleRowsTest, MinPComesAfterTopP) {
  RowSampling params = Sampling(1.0f, 81);
  params.top_p = 0.95f;  // keeps 0.5, 0.25, 0.15, 0.07
  params.min_p = 0.4f;   // then threshold 0.2 keeps 0.5, 0.25
  EXPECT_EQ(DrawnTokens(LogitsOf(kProbs), params, 20000), (std::set<int32_t>{1, 3}));
}

// Small rows with many ties and masked logits, random filter settings: the tokens that come out
// over many draws are exactly the brute-force kept set. Logits within 2 of each other and
// temperatures >= 1 give every kept token a probability >= e^-2 / 12, so 3000 draws miss one
// with probability below e^-30.
TEST(CpuSampleRowsTest, DrawnTokensAreExactlyTheBruteForceKeptSet) {
  std::mt19937_64 rng(12);
  for (int trial = 0; trial < 200; ++trial) {
    const int vocab = 1 + static_cast<int>(rng() % 12);
    std::vector<float> logits(vocab);
    for (float& x : logits) {
      const uint64_t kind = rng() % 16;
      x = kind == 0 ? kNegInf : kind == 1 ? kNaN : static_cast<float>(rng() % 5) / 2.0f;
    }
    logits[rng() % vocab] = 1.0f;  // at least one candidate
    RowSampling params = Sampling(1.0f + static_cast<float>(rng() % 3) / 2.0f, trial);
    params.top_k = static_cast<int32_t>(rng() % (vocab + 1));
    params.top_p = (rng() % 2 == 0) ? 1.0f : static_cast<float>(1 + rng() % 100) / 100.0f;
    params.min_p = (rng() % 2 == 0) ? 0.0f : static_cast<float>(rng() % 100) / 100.0f;
    EXPECT_EQ(DrawnTokens(logits, params, 3000), BruteForceKept(logits, params))
        << "trial " << trial << ": top_k " << params.top_k << " top_p " << params.top_p << " min_p "
        << params.min_p;
  }
}

// Larger rows, where top-k selects and top-p sorts in several chunks: every draw lies in the
// brute-force kept set.
TEST(CpuSampleRowsTest, DrawsStayInTheBruteForceKeptSet) {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 50; ++trial) {
    const int vocab = 1 + static_cast<int>(rng() % 5000);
    std::vector<float> logits(vocab);
    for (float& x : logits) {
      x = (rng() % 16 == 0) ? kNegInf : static_cast<float>(rng() % 40) / 4.0f - 5.0f;
    }
    logits[rng() % vocab] = 6.0f;
    RowSampling params = Sampling(0.25f + static_cast<float>(rng() % 8) / 4.0f, trial);
    params.top_k = (rng() % 2 == 0) ? 0 : 1 + static_cast<int32_t>(rng() % 2000);
    params.top_p = (rng() % 2 == 0) ? 1.0f : 0.05f + static_cast<float>(rng() % 95) / 100.0f;
    params.min_p = (rng() % 2 == 0) ? 0.0f : static_cast<float>(rng() % 20) / 100.0f;
    const std::set<int32_t> kept = BruteForceKept(logits, params);
    for (int draw = 0; draw < 100; ++draw) {
      ASSERT_EQ(kept.count(Draw(logits, params, draw)), 1u) << "trial " << trial;
    }
  }
}

// A nucleus of ~300 near-equal tokens (past the first chunk of 256 that top-p sorts) among
// 8192: each kept token has p ~ 1/300, so 8000 draws miss one with probability ~ 300 e^-26.
TEST(CpuSampleRowsTest, TopPOnALargeRowKeepsExactlyTheNucleus) {
  constexpr int kVocab = 8192;
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> low(-6.0f, 0.0f), high(4.9f, 5.1f);
  std::vector<float> logits(kVocab);
  for (float& x : logits) x = low(rng);
  for (int i = 0; i < 450; ++i) logits[(i * 7919) % kVocab] = high(rng);
  RowSampling params = Sampling(0.9f, 2024);
  params.top_p = 0.7f;
  const std::set<int32_t> nucleus = BruteForceKept(logits, params);
  ASSERT_GT(nucleus.size(), 256u);
  ASSERT_LT(nucleus.size(), 350u);
  EXPECT_EQ(DrawnTokens(logits, params, 8000), nucleus);
}

// ---- Temperature and non-finite logits ---------------------------------------------------------

TEST(CpuSampleRowsTest, TinyTemperatureWithHugeLogitsIsGreedy) {
  // Every p but the top token's underflows to 0, and a token of p = 0 is never drawn.
  EXPECT_EQ(DrawnTokens({-1e4f, 1e4f, 9999.0f, 0.0f}, Sampling(1e-30f), 100),
            (std::set<int32_t>{1}));
}

TEST(CpuSampleRowsTest, MaskedAndNaNLogitsAreNeverDrawn) {
  const std::vector<float> logits = {kNegInf, 0.0f, kNaN, 0.0f, kNegInf};
  EXPECT_EQ(DrawnTokens(logits, Sampling(1.0f), 1000), (std::set<int32_t>{1, 3}));
}

TEST(CpuSampleRowsTest, NonFiniteMaximumAnswersTheArgmaxWithoutADraw) {
  const RowSampling params = Sampling(1.0f);
  const std::vector<std::vector<float>> rows = {
      {0.0f, 3.0f, kInf, 1.0f, kInf},  // +inf is a certainty: its lowest index
      {kNegInf, kNegInf, kNegInf},     // nothing to weigh: ArgmaxRow's first index
      {kNaN, kNaN, kNaN},              // ... its last for all NaN
      {kNaN, kNegInf, kNaN, kNegInf},  // ... and the first -inf of a mix
  };
  for (const std::vector<float>& row : rows) {
    const cpu::SampledToken drawn = cpu::SampleRow(row.data(), std::ssize(row), params);
    EXPECT_EQ(drawn.token, cpu::ArgmaxRow(row.data(), std::ssize(row)));
    EXPECT_EQ(drawn.margin, std::numeric_limits<double>::infinity());
  }
  EXPECT_EQ(Draw({kInf, 0.0f}, params, 0), 0);
  EXPECT_EQ(Draw({kNaN, kNegInf, kNaN, kNegInf}, params, 0), 1);
}

TEST(CpuSampleRowsTest, ASingleColumnIsAlwaysDrawn) {
  EXPECT_EQ(DrawnTokens({-3.0f}, Sampling(0.5f), 100), (std::set<int32_t>{0}));
}

// ---- Greedy rows -------------------------------------------------------------------------------

// Every row the rule of ArgmaxRows distinguishes, and random rows with and without a tie for the
// maximum, under filters, seeds and draws that must all be ignored. Were temperature 0 sampled,
// the top token's weight would be exp(0 / 0) = NaN.
TEST(CpuSampleRowsTest, TemperatureZeroIsTheArgmaxWhateverTheOtherFields) {
  std::vector<std::vector<float>> rows = {
      {1.0f, 3.0f, 2.0f, 3.0f},        // a tie: the lower index
      {-1.0f, -0.0f, 0.0f},            // -0 == +0: the lower index
      {kNaN, -5.0f, kNaN, -4.0f},      // NaN is never chosen...
      {kNaN, kNaN, kNaN},              // ...unless all is NaN: the last index
      {kNegInf, kNegInf, kNegInf},     // all -inf: the first
      {kNaN, kNegInf, kNaN, kNegInf},  // no candidate: the first -inf
      {0.0f, kInf, 3.0f, kInf},        // +inf: its lowest index
      {-3.0f},
  };
  std::mt19937_64 rng(15);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int r = 0; r < 20; ++r) {
    std::vector<float> row(1 + rng() % 3000);
    for (float& x : row) x = normal(rng);
    if (r % 2 == 0) row[rng() % row.size()] = row[rng() % row.size()] = 20.0f;
    rows.push_back(std::move(row));
  }
  const int32_t top_ks[] = {0, 1, 5};
  const float top_ps[] = {1.0f, 0.3f};
  const float min_ps[] = {0.0f, 0.5f};
  for (size_t r = 0; r < rows.size(); ++r) {
    const int64_t cols = std::ssize(rows[r]);
    const int32_t want = static_cast<int32_t>(cpu::ArgmaxRow(rows[r].data(), cols));
    for (int mix = 0; mix < 12; ++mix) {
      RowSampling params = Sampling(0.0f, 1000 * r + mix);
      params.top_k = top_ks[mix % 3];
      params.top_p = top_ps[mix / 3 % 2];
      params.min_p = min_ps[mix / 6];
      params.draw = 7 * mix;
      const cpu::SampledToken got = cpu::SampleRow(rows[r].data(), cols, params);
      EXPECT_EQ(got.token, want) << "row " << r << " mix " << mix;
      EXPECT_EQ(got.margin, std::numeric_limits<double>::infinity()) << "nothing is drawn";
    }
  }
}

// `count` logits drawn from N(0, 2^2) with `seed`.
std::vector<float> NormalLogits(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(count);
  for (float& x : logits) x = normal(rng);
  return logits;
}

// Through the backend: one call over greedy and sampled rows, each answered as if alone.
TEST(CpuSampleRowsTest, GreedyAndSampledRowsShareOneCall) {
  constexpr int64_t kRows = 8, kCols = 500;
  const std::vector<float> logits = NormalLogits(kRows * kCols, 16);
  std::vector<RowSampling> params(kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    params[r] = Sampling(r % 2 == 0 ? 0.0f : 1.2f, 200 + r);
    params[r].draw = 3 * r;
    params[r].top_k = r % 4 < 2 ? 0 : 40;
  }
  std::vector<int32_t> out(kRows, -1);
  CreateCpuBackend()->SampleRows(logits.data(), kRows, kCols, params.data(), out.data());
  int sampled_off_the_argmax = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    const float* row = logits.data() + r * kCols;
    const int32_t argmax = static_cast<int32_t>(cpu::ArgmaxRow(row, kCols));
    if (params[r].temperature == 0.0f) {
      EXPECT_EQ(out[r], argmax) << "greedy row " << r;
    } else {
      EXPECT_EQ(out[r], cpu::SampleRow(row, kCols, params[r]).token) << "sampled row " << r;
      sampled_off_the_argmax += out[r] != argmax ? 1 : 0;
    }
  }
  // The sampled rows were drawn (at temperature 1.2 over 500 tokens the top is rarely drawn).
  EXPECT_GT(sampled_off_the_argmax, 0);
}

// ---- Rows --------------------------------------------------------------------------------------

// Through the backend: each row's token is the one it gets alone, whatever the other rows hold
// and in whichever order the rows come.
TEST(CpuSampleRowsTest, RowsOfOneCallAreIndependent) {
  constexpr int64_t kRows = 6, kCols = 300;
  const std::vector<float> logits = NormalLogits(kRows * kCols, 14);
  std::vector<RowSampling> params(kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    params[r] = Sampling(0.5f + 0.2f * r, 100 + r);
    params[r].draw = 7 * r;
    params[r].top_k = r % 2 == 0 ? 0 : 20;
    params[r].top_p = r % 3 == 0 ? 1.0f : 0.8f;
  }
  std::vector<int32_t> alone(kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    alone[r] = cpu::SampleRow(logits.data() + r * kCols, kCols, params[r]).token;
  }
  auto backend = CreateCpuBackend();
  std::vector<int32_t> together(kRows, -1);
  backend->SampleRows(logits.data(), kRows, kCols, params.data(), together.data());
  EXPECT_EQ(together, alone);

  std::vector<float> reversed_logits;
  for (int64_t r = kRows - 1; r >= 0; --r) {
    reversed_logits.insert(reversed_logits.end(), logits.begin() + r * kCols,
                           logits.begin() + (r + 1) * kCols);
  }
  std::vector<RowSampling> reversed_params(params.rbegin(), params.rend());
  std::vector<int32_t> reversed(kRows, -1);
  backend->SampleRows(reversed_logits.data(), kRows, kCols, reversed_params.data(),
                      reversed.data());
  EXPECT_EQ(std::vector<int32_t>(reversed.rbegin(), reversed.rend()), alone);
}

}  // namespace
}  // namespace mlkv
