// Turns the scheduler's decision for one step into the model's flat batch (token ids, positions,
// slot mapping, block tables, logits rows), runs the model, and hands back the logits of the rows
// each request needs.
#ifndef MLKV_ENGINE_MODEL_RUNNER_H_
#define MLKV_ENGINE_MODEL_RUNNER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "scheduler/scheduler_output.h"

namespace mlkv {

// What one scheduled request wants from the step besides its KV: logits to score its prompt from
// position `prompt_logprobs_from` on (the logits at position p predict token p + 1), if set; and
// for the row it samples, its logits, or only a token taken on the backend so that the logits
// need not leave it: the greedy token (the argmax) when `greedy_token_only`, else one drawn with
// `backend_sampling` when set.
struct RowRequest {
  std::optional<int32_t> prompt_logprobs_from;
  bool greedy_token_only = false;
  std::optional<RowSampling> backend_sampling;
};

// The output of one batch row, and the position of the token it was computed for: its logits,
// or, for a sampled row whose token the backend took, that token.
struct RowLogits {
  int32_t position;
  std::span<const float> logits;  // vocab_size values, valid until the next Run(); else empty
  int32_t token = -1;             // set instead of `logits` when the backend took the token
};

class ModelRunner {
 public:
  // Neither is owned; both must outlive the runner.
  ModelRunner(Model* model, KvCache* cache) : model_(model), cache_(cache) {}

  // Runs the step. `requests` is aligned with output.scheduled. Afterwards Rows(i) lists, in
  // position order, the rows of scheduled request i that have logits: the prompt rows asked for,
  // then its last row when the step reaches the end of its known tokens (needs_sample).
  absl::Status Run(const SchedulerOutput& output, absl::Span<const RowRequest> requests);
  const std::vector<RowLogits>& Rows(size_t i) const { return rows_[i]; }

 private:
  void BuildBatch(const SchedulerOutput& output, absl::Span<const RowRequest> requests);

  Model* model_;
  KvCache* cache_;
  // Where each output row of the batch goes, in row order: the scheduled request, and its index
  // among the batch's rows of its kind.
  enum class RowKind { kLogits, kArgmax, kSample };
  struct RowSource {
    size_t request;
    RowKind kind;
    size_t index;
  };

  StepBatch batch_;  // reused across steps: no allocation once warm
  std::vector<RowSource> sources_;
  StepOutput output_;
  std::vector<std::vector<RowLogits>> rows_;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_MODEL_RUNNER_H_
