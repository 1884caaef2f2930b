// Turning EngineStats into Prometheus metric families; see engine_stats_collector.h.
#include "server/metrics/engine_stats_collector.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace mlkv::server::metrics {
namespace {

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  metric.gauge.value = value;  // only the field of the family's type is written out
  metric.counter.value = value;
  return {std::move(name), std::move(help), type, {metric}};
}

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Gauge, value);
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  return Family(std::move(name), std::move(help), prometheus::MetricType::Counter, value);
}

}  // namespace

std::vector<prometheus::MetricFamily> EngineStatsFamilies(const EngineStats& stats) {
  const SchedulerStats& s = stats.scheduler;
  const double usage =
      s.kv.num_blocks > 0 ? static_cast<double>(s.kv.num_used_blocks) / s.kv.num_blocks : 0.0;
  // One block table serves every sharing group (docs/architecture.md), so each group's slabs
  // fill alike; the per-group series is there for dashboards that split MLKV groups, and stays
  // right if groups ever get their own tables.
  prometheus::MetricFamily groups{"mlkv_kv_cache_group_usage_perc",
                                  "Fraction of each KV sharing group's slabs in use (0-1)",
                                  prometheus::MetricType::Gauge,
                                  {}};
  for (int64_t g = 0; g < stats.num_kv_groups; ++g) {
    prometheus::ClientMetric metric;
    metric.label = {{"group", absl::StrCat(g)}};
    metric.gauge.value = usage;
    groups.metric.push_back(std::move(metric));
  }
  return {
      Gauge("mlkv_num_requests_running", "Requests in the running batch", s.num_running),
      Gauge("mlkv_num_requests_waiting", "Requests waiting to run, preempted ones included",
            s.num_waiting),
      Gauge("mlkv_kv_cache_usage_perc", "Fraction of KV cache blocks in use (0-1)", usage),
      std::move(groups),
      Gauge("mlkv_kv_cache_blocks_total", "KV cache blocks", s.kv.num_blocks),
      Gauge("mlkv_kv_cache_blocks_used", "KV cache blocks held by requests", s.kv.num_used_blocks),
      Counter("mlkv_prompt_tokens_total", "Prompt tokens of admitted requests",
              s.num_prompt_tokens),
      Counter("mlkv_generation_tokens_total", "Tokens sampled", s.num_generated_tokens),
      Counter("mlkv_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache",
              s.prefix_cache.query_tokens),
      Counter("mlkv_prefix_cache_hits_total", "Looked-up prompt tokens found in the prefix cache",
              s.prefix_cache.hit_tokens),
      Counter("mlkv_num_preemptions_total", "Requests preempted (to be recomputed)",
              s.num_preemptions),
  };
}

}  // namespace mlkv::server::metrics
