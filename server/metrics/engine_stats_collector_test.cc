// The engine-state metrics for a given EngineStats: gauges, per-group usage, and counters,
// under the names other components and dashboards read.
#include "server/metrics/engine_stats_collector.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace mlkv::server::metrics {
namespace {

using ::testing::HasSubstr;

TEST(EngineStatsCollectorTest, ExposesTheEngineState) {
  EngineStats stats;
  stats.num_kv_groups = 2;
  stats.scheduler.num_running = 3;
  stats.scheduler.num_waiting = 7;
  stats.scheduler.kv.num_blocks = 400;
  stats.scheduler.kv.num_used_blocks = 100;
  stats.scheduler.num_prompt_tokens = 1234;
  stats.scheduler.num_generated_tokens = 567;
  stats.scheduler.prefix_cache.query_tokens = 1000;
  stats.scheduler.prefix_cache.hit_tokens = 320;
  stats.scheduler.num_preemptions = 4;
  const std::string text = prometheus::TextSerializer().Serialize(EngineStatsFamilies(stats));
  for (const char* line :
       {"# TYPE mlkv_num_requests_running gauge\n", "mlkv_num_requests_running 3\n",
        "mlkv_num_requests_waiting 7\n", "mlkv_kv_cache_usage_perc 0.25\n",
        "mlkv_kv_cache_group_usage_perc{group=\"0\"} 0.25\n",
        "mlkv_kv_cache_group_usage_perc{group=\"1\"} 0.25\n", "mlkv_kv_cache_blocks_total 400\n",
        "mlkv_kv_cache_blocks_used 100\n", "# TYPE mlkv_prompt_tokens_total counter\n",
        "mlkv_prompt_tokens_total 1234\n", "mlkv_generation_tokens_total 567\n",
        "mlkv_prefix_cache_queries_total 1000\n", "mlkv_prefix_cache_hits_total 320\n",
        "mlkv_num_preemptions_total 4\n"}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
}

TEST(EngineStatsCollectorTest, AnEmptyCacheIsZeroUsedNotNaN) {
  const std::string text = prometheus::TextSerializer().Serialize(EngineStatsFamilies({}));
  EXPECT_THAT(text, HasSubstr("mlkv_kv_cache_usage_perc 0\n"));
}

}  // namespace
}  // namespace mlkv::server::metrics
