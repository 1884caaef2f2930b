// The engine-state half of mlkv-server's Prometheus metrics: gauges (requests running and
// waiting, KV cache use) and engine-lifetime counters (tokens, prefix cache, preemptions), read
// from Engine::GetStats() at each scrape, so they are never staler than the last step.
#ifndef MLKV_SERVER_METRICS_ENGINE_STATS_COLLECTOR_H_
#define MLKV_SERVER_METRICS_ENGINE_STATS_COLLECTOR_H_

#include <vector>

#include "engine/engine.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace mlkv::server::metrics {

// The metric families for one EngineStats snapshot.
std::vector<prometheus::MetricFamily> EngineStatsFamilies(const EngineStats& stats);

// Thread-safety: Collect may run on any thread (GetStats takes the engine's short lock).
class EngineStatsCollector final : public prometheus::Collectable {
 public:
  // `engine` is not owned and must outlive every scrape (stop the metrics server first).
  explicit EngineStatsCollector(const Engine* engine) : engine_(engine) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    return EngineStatsFamilies(engine_->GetStats());
  }

 private:
  const Engine* const engine_;  // not owned
};

}  // namespace mlkv::server::metrics

#endif  // MLKV_SERVER_METRICS_ENGINE_STATS_COLLECTOR_H_
