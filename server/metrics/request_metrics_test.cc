// RequestMetrics fed directly, as the engine thread would: finished requests counted by
// reason, latencies in cumulative histogram buckets with _sum, _count and +Inf, unreached
// milestones left out; read through the text exposition Prometheus scrapes.
#include "server/metrics/request_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace mlkv::server::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Exposition(const RequestMetrics& metrics) {
  return prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
}

const absl::Time kArrival = absl::FromUnixSeconds(1'700'000'000);

RequestResult Finished(FinishReason reason, absl::Duration queue, absl::Duration e2e) {
  // (Assigned from a std::string: GCC 12 warns falsely (-Wrestrict) on assigning the literal.)
  RequestResult r;
  r.request_id = std::string(1, 'r');
  r.finish_reason = reason;
  r.timings.arrival = kArrival;
  r.timings.first_scheduled = kArrival + queue;
  r.timings.finished = kArrival + e2e;
  return r;
}

TEST(RequestMetricsTest, EveryFinishReasonStartsAtZero) {
  RequestMetrics metrics;
  const std::string text = Exposition(metrics);
  EXPECT_THAT(text, HasSubstr("# TYPE mlkv_request_success_total counter"));
  for (const char* reason : {"stop", "length", "abort", "error"}) {
    EXPECT_THAT(text, HasSubstr(std::string("mlkv_request_success_total{finished_reason=\"") +
                                reason + "\"} 0\n"));
  }
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_count 0\n"));
}

TEST(RequestMetricsTest, CountsFinishedRequestsByReason) {
  RequestMetrics metrics;
  metrics.OnFinished(Finished(FinishReason::kLength, absl::Milliseconds(1), absl::Seconds(1)));
  metrics.OnFinished(Finished(FinishReason::kLength, absl::Milliseconds(1), absl::Seconds(1)));
  RequestResult failed = Finished(FinishReason::kError, absl::Milliseconds(1), absl::Seconds(1));
  failed.status = absl::InternalError("boom");
  metrics.OnFinished(failed);
  const std::string text = Exposition(metrics);
  EXPECT_THAT(text, HasSubstr("mlkv_request_success_total{finished_reason=\"length\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_request_success_total{finished_reason=\"error\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_request_success_total{finished_reason=\"stop\"} 0\n"));
}

TEST(RequestMetricsTest, TimeToFirstTokenAndInterTokenLatencyFillCumulativeBuckets) {
  RequestMetrics metrics;
  metrics.OnTokens(1, /*first=*/true, kArrival, kArrival + absl::Milliseconds(50));
  metrics.OnTokens(1, /*first=*/false, kArrival, kArrival + absl::Milliseconds(30));
  metrics.OnTokens(2, /*first=*/false, kArrival, kArrival + absl::Seconds(100));
  const std::string text = Exposition(metrics);
  EXPECT_THAT(text, HasSubstr("# TYPE mlkv_time_to_first_token_seconds histogram"));
  // 0.05 s lies in (0.04, 0.06]: buckets below it hold 0, every bucket from it on holds 1.
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_bucket{le=\"0.04\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_bucket{le=\"0.06\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_bucket{le=\"2560\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_sum 0.05\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_time_to_first_token_seconds_count 1\n"));
  // One sample per step: 0.03 s and 100 s (beyond the last bound: only +Inf holds it).
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_bucket{le=\"0.025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_bucket{le=\"0.05\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_bucket{le=\"80\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_sum 100.03\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_inter_token_latency_seconds_count 2\n"));
}

TEST(RequestMetricsTest, QueueTimeAndEndToEndLatency) {
  RequestMetrics metrics;
  metrics.OnFinished(Finished(FinishReason::kStop, absl::Milliseconds(200), absl::Seconds(3)));
  const std::string text = Exposition(metrics);
  EXPECT_THAT(text, HasSubstr("mlkv_request_queue_time_seconds_bucket{le=\"0.1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_request_queue_time_seconds_bucket{le=\"0.3\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_request_queue_time_seconds_sum 0.2\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_e2e_request_latency_seconds_bucket{le=\"2.5\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_e2e_request_latency_seconds_bucket{le=\"5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_e2e_request_latency_seconds_count 1\n"));
}

TEST(RequestMetricsTest, MilestonesNeverReachedAreNotObserved) {
  RequestMetrics metrics;
  // Aborted while waiting: never scheduled, so it has no queue time to report.
  RequestResult aborted = Finished(FinishReason::kAbort, absl::ZeroDuration(), absl::Seconds(1));
  aborted.timings.first_scheduled = absl::InfinitePast();
  metrics.OnFinished(aborted);
  const std::string text = Exposition(metrics);
  EXPECT_THAT(text, HasSubstr("mlkv_request_success_total{finished_reason=\"abort\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_request_queue_time_seconds_count 0\n"));
  EXPECT_THAT(text, HasSubstr("mlkv_e2e_request_latency_seconds_count 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("NaN")));
}

TEST(RequestMetricsTest, BucketBoundsIncrease) {
  for (const auto* buckets :
       {&kTimeToFirstTokenBuckets, &kInterTokenLatencyBuckets, &kRequestLatencyBuckets}) {
    for (size_t i = 1; i < buckets->size(); ++i) EXPECT_LT((*buckets)[i - 1], (*buckets)[i]);
  }
}

}  // namespace
}  // namespace mlkv::server::metrics
