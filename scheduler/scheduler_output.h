// What one scheduling step decides, for the model runner: which requests advance by how many
// tokens, the tokens to feed and the block tables to use; and what UpdateFromOutput() reports.
#ifndef MLKV_SCHEDULER_SCHEDULER_OUTPUT_H_
#define MLKV_SCHEDULER_SCHEDULER_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "scheduler/request.h"

namespace mlkv {

// One request's share of a step. The runner builds, for j in [0, num_new_tokens):
//   position p = num_computed_tokens + j, token token_ids[j],
//   slot_mapping = block_table[p / block_size] * block_size + p % block_size,
// attends over positions [0, num_computed_tokens + num_new_tokens), and takes the logits of the
// last new token when needs_sample.
//
// Lifetime: the pointer and spans point into scheduler-owned state and stay valid until the
// UpdateFromOutput() that consumes this step returns (AbortRequest() on a request in the step
// defers its release until then).
struct ScheduledRequest {
  const Request* request;
  int32_t num_computed_tokens;            // before this step
  int32_t num_new_tokens;                 // >= 1
  absl::Span<const int32_t> token_ids;    // the num_new_tokens tokens to compute
  absl::Span<const int32_t> block_table;  // whole table; covers num_computed + num_new tokens
  // The step computes the request's last known token, so its logits yield the next token.
  // False for a prompt chunk that stops short of the end.
  bool needs_sample;
};

struct SchedulerOutput {
  int64_t step_id = 0;                      // matches the output to its UpdateFromOutput()
  std::vector<ScheduledRequest> scheduled;  // running requests first, then new admissions
  int32_t num_scheduled_tokens = 0;         // sum of num_new_tokens, <= max_num_batched_tokens
  std::vector<std::string> preempted_ids;   // preempted in this step; their blocks are free
  std::vector<std::string> finished_ids;    // finished since the previous step
  bool empty() const { return scheduled.empty(); }
};

// A token sampled for a request in the step UpdateFromOutput() consumed. `request` stays valid
// until the next Schedule() call, or, for a finished request, for as long as whoever took it
// from TakeFinishedRequests() keeps it.
struct NewToken {
  const Request* request;
  int32_t token_id;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_SCHEDULER_OUTPUT_H_
