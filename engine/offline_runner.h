// Runs a fixed set of sequences to completion on one model, batched step by step: the driver of
// `mlkv generate` / `mlkv score`, the benchmarks and the model tests, until the scheduler's engine
// loop takes over serving. Blocks are handed out from a private pool sized for the whole set.
#ifndef MLKV_ENGINE_OFFLINE_RUNNER_H_
#define MLKV_ENGINE_OFFLINE_RUNNER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/sampling_params.h"

namespace mlkv {

struct SequenceRequest {
  std::vector<int32_t> prompt;       // at least one token
  int64_t max_tokens = 16;           // tokens to generate; 0 only scores the prompt
  SamplingParams sampling;
  bool ignore_eos = false;
  bool want_prompt_logprobs = false;  // log p(prompt[i] | prompt[<i]) for i >= 1
};

struct SequenceResult {
  std::vector<int32_t> output_tokens;
  std::vector<float> output_logprobs;  // of each output token under the raw (unmodified) logits
  std::vector<float> prompt_logprobs;  // when asked for: prompt.size() - 1 values
};

struct OfflineRunnerOptions {
  int64_t block_size = 16;
  DType kv_dtype = DType::kF32;
  // Most prompt tokens of one sequence per step (chunked prefill); 0 = the whole prompt at once.
  int64_t prefill_chunk = 0;
  // When set, physical block ids are handed out in an order shuffled with this seed, so tests
  // can show that results do not depend on where blocks live.
  std::optional<uint64_t> shuffle_blocks_seed;
  uint64_t default_seed = 0;  // sampling seed of requests that set none (their index is added)

  absl::Status Validate() const;
};

class OfflineRunner {
 public:
  // `model` is not owned and must outlive the runner.
  OfflineRunner(Model* model, const OfflineRunnerOptions& options);

  // Validates every request (naming the request and the field), then runs them all together.
  absl::StatusOr<std::vector<SequenceResult>> Run(const std::vector<SequenceRequest>& requests);

 private:
  Model* model_;
  OfflineRunnerOptions options_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_OFFLINE_RUNNER_H_
