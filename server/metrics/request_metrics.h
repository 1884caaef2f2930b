// The request-level half of mlkv-server's Prometheus metrics, fed by the engine as an
// EngineMonitor: finished requests by reason, and the latency histograms (TTFT, inter-token,
// end-to-end, queue time). It also logs one line per finished request.
#ifndef MLKV_SERVER_METRICS_REQUEST_METRICS_H_
#define MLKV_SERVER_METRICS_REQUEST_METRICS_H_

#include <array>
#include <memory>

#include "engine/engine_monitor.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace mlkv::server::metrics {

// Bucket upper bounds, in seconds. Like vLLM's, so that dashboards and alerts written for it
// read ours alike, with finer low buckets for the CPU backend's millisecond steps.
extern const prometheus::Histogram::BucketBoundaries kTimeToFirstTokenBuckets;
extern const prometheus::Histogram::BucketBoundaries kInterTokenLatencyBuckets;
extern const prometheus::Histogram::BucketBoundaries kRequestLatencyBuckets;

// Thread-safety: the engine calls OnTokens and OnFinished on its thread while scrapes collect
// the registry on others; prometheus-cpp's metrics are safe for that.
class RequestMetrics final : public EngineMonitor {
 public:
  RequestMetrics();

  // What /metrics exposes of these figures.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  void OnTokens(int32_t num_tokens, bool first, absl::Time previous, absl::Time now) override;
  void OnFinished(const RequestResult& result) override;

 private:
  // Declared first: the families and metrics below live in it.
  const std::shared_ptr<prometheus::Registry> registry_;
  // mlkv_request_success_total by FinishReason, every reason present from the start so that
  // rate() sees the first request of each.
  std::array<prometheus::Counter*, 4> finished_;
  prometheus::Histogram* time_to_first_token_;
  prometheus::Histogram* inter_token_latency_;
  prometheus::Histogram* e2e_request_latency_;
  prometheus::Histogram* request_queue_time_;
};

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_REQUEST_METRICS_H_
