// Recording request-level metrics and logging finished requests; see request_metrics.h.
#include "server/metrics/request_metrics.h"

#include <string>

#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace mlkv::server::metrics {
namespace {

constexpr FinishReason kFinishReasons[] = {FinishReason::kStop, FinishReason::kLength,
                                           FinishReason::kAbort, FinishReason::kError};

// finished_ is indexed by the enum: its four reasons are 0-3.
static_assert(static_cast<int>(FinishReason::kError) == 3);

bool Reached(absl::Time t) { return t != absl::InfinitePast(); }

prometheus::Histogram* AddHistogram(prometheus::Registry& registry, const std::string& name,
                                    const std::string& help,
                                    const prometheus::Histogram::BucketBoundaries& buckets) {
  return &prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add({}, buckets);
}

// "12.3 ms", or "-" for a milestone the request never reached.
std::string Millis(absl::Time from, absl::Time to) {
  if (!Reached(from) || !Reached(to)) return "-";
  return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(to - from));
}

// One line per request, with what an operator looks for when a client reports a slow or
// failed request. spdlog formats and writes it on the engine thread: a few microseconds
// against a step's milliseconds.
void LogFinished(const RequestResult& r) {
  const RequestTimings& t = r.timings;
  const std::string line = absl::StrFormat(
      "request %s: %s, %d prompt tokens (%d cached), %d completion tokens, %d preemptions, "
      "queue %s, ttft %s, e2e %s",
      r.request_id, FinishReasonName(r.finish_reason), r.num_prompt_tokens,
      r.num_cached_prompt_tokens, r.output_token_ids.size(), r.num_preemptions,
      Millis(t.arrival, t.first_scheduled), Millis(t.arrival, t.first_token),
      Millis(t.arrival, t.finished));
  if (r.status.ok()) {
    spdlog::info("{}", line);
  } else {
    spdlog::warn("{}: {}", line, r.status.ToString());
  }
}

}  // namespace

const prometheus::Histogram::BucketBoundaries kTimeToFirstTokenBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
    1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const prometheus::Histogram::BucketBoundaries kInterTokenLatencyBuckets = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3, 0.4,
    0.5,   0.75,  1.0,  2.5,   5.0,  7.5,   10.0, 20.0, 40.0, 80.0};
const prometheus::Histogram::BucketBoundaries kRequestLatencyBuckets = {
    0.01, 0.1,  0.3,  0.5,  0.8,  1.0,   1.5,   2.0,   2.5,   5.0,    10.0,  15.0,
    20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

RequestMetrics::RequestMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& finished = prometheus::BuildCounter()
                       .Name("mlkv_request_success_total")
                       .Help(
                           "Requests that ended, by finish reason (error: the engine failed "
                           "them; abort: cancelled or shut down)")
                       .Register(*registry_);
  for (const FinishReason reason : kFinishReasons) {
    finished_[static_cast<size_t>(reason)] =
        &finished.Add({{"finished_reason", FinishReasonName(reason)}});
  }
  time_to_first_token_ =
      AddHistogram(*registry_, "mlkv_time_to_first_token_seconds",
                   "Time from arrival to the first output token", kTimeToFirstTokenBuckets);
  inter_token_latency_ =
      AddHistogram(*registry_, "mlkv_inter_token_latency_seconds",
                   "Time between a request's successive engine steps that produced tokens",
                   kInterTokenLatencyBuckets);
  e2e_request_latency_ =
      AddHistogram(*registry_, "mlkv_e2e_request_latency_seconds",
                   "Time from arrival to the end of the request", kRequestLatencyBuckets);
  request_queue_time_ = AddHistogram(*registry_, "mlkv_request_queue_time_seconds",
                                     "Time from arrival until a step first computed the request",
                                     kRequestLatencyBuckets);
}

void RequestMetrics::OnTokens(int32_t num_tokens, bool first, absl::Time previous, absl::Time now) {
  // One observation per step, as vLLM does: tokens that come together had no latency between
  // them worth a sample each.
  (first ? time_to_first_token_ : inter_token_latency_)
      ->Observe(absl::ToDoubleSeconds(now - previous));
}

void RequestMetrics::OnFinished(const RequestResult& result) {
  finished_[static_cast<size_t>(result.finish_reason)]->Increment();
  const RequestTimings& t = result.timings;
  if (Reached(t.arrival) && Reached(t.finished)) {
    e2e_request_latency_->Observe(absl::ToDoubleSeconds(t.finished - t.arrival));
  }
  if (Reached(t.arrival) && Reached(t.first_scheduled)) {
    request_queue_time_->Observe(absl::ToDoubleSeconds(t.first_scheduled - t.arrival));
  }
  LogFinished(result);
}

}  // namespace mlkv::server::metrics
