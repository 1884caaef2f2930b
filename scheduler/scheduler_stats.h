// A snapshot of the scheduler's counts and counters, for the server's metrics.
#ifndef MLKV_SCHEDULER_SCHEDULER_STATS_H_
#define MLKV_SCHEDULER_SCHEDULER_STATS_H_

#include <cstdint>

#include "scheduler/kv_cache_manager.h"

namespace mlkv {

struct SchedulerStats {
  // Now.
  int32_t num_running = 0;
  int32_t num_waiting = 0;    // preempted ones included
  int32_t num_preempted = 0;  // waiting after a preemption
  KvCacheUsage kv;            // blocks hold every sharing group: per group the counts are equal
  // Since start.
  PrefixCacheStats prefix_cache;
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  int64_t num_finished = 0;
  int64_t num_rejected = 0;          // AddRequest() errors
  int64_t num_prompt_tokens = 0;     // prompt lengths, counted at each request's first admission
  int64_t num_generated_tokens = 0;  // tokens sampled
  int64_t num_computed_tokens = 0;   // tokens the model computed, recomputation included
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_SCHEDULER_STATS_H_
