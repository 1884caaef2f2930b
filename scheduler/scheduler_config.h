// The scheduler's limits: the token budget per step, sequences per step, sequence length, the KV
// cache's blocks, and which of prefix caching and chunked prefill are on.
#ifndef MLKV_SCHEDULER_SCHEDULER_CONFIG_H_
#define MLKV_SCHEDULER_SCHEDULER_CONFIG_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace mlkv {

struct SchedulerConfig {
  int32_t max_num_batched_tokens = 2048;  // tokens computed per step, over all sequences
  int32_t max_num_seqs = 256;             // sequences running at once
  int32_t max_model_len = 2048;           // prompt + output tokens of one sequence
  int32_t block_size = 16;                // tokens per KV block
  int32_t num_blocks = 0;                 // KV blocks in the cache (the engine sizes it)
  bool enable_prefix_caching = true;
  // Off: a prompt is computed in one step, so max_num_batched_tokens must cover max_model_len.
  bool enable_chunked_prefill = true;
  // Requests waiting at most; beyond, AddRequest() says RESOURCE_EXHAUSTED.
  int32_t max_waiting = 4096;
  // Caps the tokens one sequence computes in a step, so a long prompt shares steps with others.
  // Needs chunked prefill.
  std::optional<int32_t> long_prefill_token_threshold;

  // InvalidArgument naming the field when a value is out of range or the combination cannot
  // work. A max_model_len the cache cannot hold is left to the engine, which knows which smaller
  // length would fit; requests that cannot fit are refused one by one.
  absl::Status Validate() const;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_SCHEDULER_CONFIG_H_
