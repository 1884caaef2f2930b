// Summary arithmetic: percentiles, per-request latencies, throughput, goodput and errors,
// checked against hand-computed values.
#include "tools/loadgen/summary.h"

#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

// A request sent at `start` whose chunks arrive at the given times with the given token counts.
RequestRecord Record(double start, std::vector<RequestRecord::Chunk> chunks, double end) {
  RequestRecord r;
  r.start_s = start;
  r.chunks = std::move(chunks);
  r.end_s = end;
  r.prompt_tokens = 10;
  r.expected_output_tokens = r.output_tokens();
  return r;
}

TEST(PercentileTest, InterpolatesLinearlyLikeNumpy) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(Percentile({5}, 99), 5);
}

TEST(StatsMsTest, ConvertsToMillisecondsAndIsUnsetWhenEmpty) {
  auto s = StatsMs({0.003, 0.001, 0.002});
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->mean, 2);
  EXPECT_DOUBLE_EQ(s->p50, 2);
  EXPECT_DOUBLE_EQ(s->max, 3);
  EXPECT_FALSE(StatsMs({}).has_value());
}

TEST(RequestRecordTest, LatenciesFromChunks) {
  // Sent at 1.0; 1 token at 1.1, 3 merged tokens at 1.4, 1 token at 1.5.
  const RequestRecord r = Record(1.0, {{1.1, 1}, {1.4, 3}, {1.5, 1}}, 1.6);
  EXPECT_EQ(r.output_tokens(), 5);
  EXPECT_NEAR(*r.ttft_s(), 0.1, 1e-12);
  EXPECT_NEAR(*r.tpot_s(), 0.1, 1e-12);  // (1.5 - 1.1) / 4
  EXPECT_NEAR(r.e2e_s(), 0.6, 1e-12);
  const std::vector<double> itl = r.itl_s();
  ASSERT_EQ(itl.size(), 4u);
  for (double g : itl) EXPECT_NEAR(g, 0.1, 1e-12);  // the 0.3 s gap spread over 3 tokens
}

TEST(RequestRecordTest, AFirstChunkOfSeveralTokensHasZeroGaps) {
  const RequestRecord r = Record(0, {{0.5, 3}}, 0.5);
  EXPECT_EQ(r.itl_s(), std::vector<double>({0, 0}));
  EXPECT_DOUBLE_EQ(*r.tpot_s(), 0);
  const RequestRecord one = Record(0, {{0.5, 1}}, 0.5);
  EXPECT_FALSE(one.tpot_s().has_value());
  EXPECT_TRUE(one.itl_s().empty());
  EXPECT_FALSE(Record(0, {}, 0.5).ttft_s().has_value());
}

TEST(SummarizeTest, ThroughputLatencyGoodputAndErrors) {
  std::vector<RequestRecord> records = {
      Record(0, {{0.1, 1}, {0.2, 1}}, 0.2),  // TTFT 100 ms, TPOT 100 ms, E2E 200 ms
      Record(0, {{0.3, 1}, {0.7, 1}}, 0.7),  // TTFT 300 ms, TPOT 400 ms, E2E 700 ms
  };
  RequestRecord failed = Record(0, {{0.1, 1}}, 0.2);
  failed.code = absl::StatusCode::kUnavailable;
  records.push_back(failed);
  records.push_back(failed);
  Slo slo;
  slo.ttft_ms = 200;
  const Summary s = Summarize(records, 2.0, slo);
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.errors_by_code.at("UNAVAILABLE"), 2);
  EXPECT_EQ(s.output_tokens, 4);
  EXPECT_EQ(s.input_tokens, 20);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 2.0);
  EXPECT_DOUBLE_EQ(s.input_tokens_per_s, 10.0);
  EXPECT_DOUBLE_EQ(s.goodput, 0.5);  // only the first meets TTFT <= 200 ms
  EXPECT_DOUBLE_EQ(s.slo_attainment, 0.25);
  EXPECT_NEAR(s.ttft_ms->mean, 200, 1e-9);
  EXPECT_NEAR(s.ttft_ms->p50, 200, 1e-9);
  EXPECT_NEAR(s.ttft_ms->p99, 298, 1e-9);
  EXPECT_NEAR(s.tpot_ms->mean, 250, 1e-9);
  EXPECT_NEAR(s.itl_ms->max, 400, 1e-9);
  EXPECT_NEAR(s.e2e_ms->p90, 650, 1e-9);
}

TEST(SummarizeTest, NoSloMeansEveryCompletedRequestCounts) {
  const Summary s = Summarize({Record(0, {{0.1, 1}}, 5.0)}, 4.0, Slo{});
  EXPECT_DOUBLE_EQ(s.goodput, 0.25);
  EXPECT_DOUBLE_EQ(s.slo_attainment, 1.0);
}

TEST(SummarizeTest, EachSloThresholdApplies) {
  const RequestRecord r = Record(0, {{0.1, 1}, {0.3, 1}}, 0.5);  // TPOT 200 ms, E2E 500 ms
  Slo itl;
  itl.itl_ms = 150;
  EXPECT_FALSE(MeetsSlo(r, itl));
  itl.itl_ms = 250;
  EXPECT_TRUE(MeetsSlo(r, itl));
  Slo e2e;
  e2e.e2e_ms = 400;
  EXPECT_FALSE(MeetsSlo(r, e2e));
}

TEST(SummarizeTest, NothingSentHasNoRatesOrLatencies) {
  const Summary s = Summarize({}, 0.0, Slo{});
  EXPECT_EQ(s.completed, 0);
  EXPECT_EQ(s.requests_per_s, 0);
  EXPECT_FALSE(s.ttft_ms.has_value());
}

}  // namespace
}  // namespace mlkv::loadgen
