// A request's scheduling state: its tokens (prompt, then output), how many are computed, its
// block table, stop conditions, priority and lifecycle. The Scheduler is its only writer.
#ifndef MLKV_SCHEDULER_REQUEST_H_
#define MLKV_SCHEDULER_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "scheduler/block_table.h"

namespace mlkv {

//   kWaiting --admit--> kRunning --stop/length--> kFinished
//       ^                  |  \--abort/error-----> kFinished (also from kWaiting, kPreempted)
//       |               preempt
//   kPreempted <-----------/   (waits again; resumes by recomputing prompt + output)
enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished };

enum class FinishReason {
  kStop,    // EOS (unless ignore_eos) or a stop token id was generated
  kLength,  // max_tokens generated
  kAbort,   // the client cancelled
  kError,   // the engine failed it
};

// Lower-case names for logs and metrics: "waiting", "stop", ...
const char* RequestStatusName(RequestStatus status);
const char* FinishReasonName(FinishReason reason);

// What a client asks for, beyond the prompt. Sampling itself is the engine's business.
struct RequestParams {
  int32_t max_tokens = 16;              // output tokens to generate at most; >= 1
  std::optional<int32_t> eos_token_id;  // stops generation unless ignore_eos
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;  // each stops generation (kept in the output)
  int32_t priority = 0;                 // lower is more urgent; ties go first-come-first-served
  // Compute every prompt token even when cached blocks hold them (e.g. for prompt logprobs,
  // which need a row per prompt token). Its own full blocks are still cached for others.
  bool skip_prefix_cache = false;
};

// Tokens, laid out once so a step's input is a contiguous slice:
//
//   all_token_ids  [ prompt ............ | output ...... ]
//                    0                    num_prompt      num_tokens
//   computed       [ ..... num_computed_tokens ..... )      the KV cache holds these
//
// Invariants: num_computed_tokens <= num_tokens; output grows only at the end; preemption
// resets num_computed_tokens to 0 and keeps the output, so a resumed request recomputes prompt
// and output as one prompt and goes on generating where it stopped. Not thread-safe.
class Request {
 public:
  Request(std::string id, std::vector<int32_t> prompt_token_ids, RequestParams params);
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  const std::string& id() const { return id_; }
  const RequestParams& params() const { return params_; }
  int32_t priority() const { return params_.priority; }
  int32_t max_tokens() const { return params_.max_tokens; }

  absl::Span<const int32_t> all_token_ids() const { return token_ids_; }
  absl::Span<const int32_t> prompt_token_ids() const {
    return all_token_ids().subspan(0, num_prompt_tokens_);
  }
  absl::Span<const int32_t> output_token_ids() const {
    return all_token_ids().subspan(num_prompt_tokens_);
  }
  int32_t num_tokens() const { return static_cast<int32_t>(token_ids_.size()); }
  int32_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }
  int32_t num_computed_tokens() const { return num_computed_tokens_; }

  // Prompt tokens its first admission found in the prefix cache.
  int32_t num_cached_prompt_tokens() const { return num_cached_prompt_tokens_; }
  int32_t num_preemptions() const { return num_preemptions_; }
  // Order of arrival at the scheduler (set by AddRequest); breaks priority ties.
  int64_t arrival_seq() const { return arrival_seq_; }
  RequestStatus status() const { return status_; }
  bool is_finished() const { return status_ == RequestStatus::kFinished; }
  // Set once the request is kFinished.
  std::optional<FinishReason> finish_reason() const { return finish_reason_; }
  const BlockTable& block_table() const { return block_table_; }

  // Whether `a` is scheduled before `b`: more urgent priority, then earlier arrival.
  static bool Precedes(const Request& a, const Request& b) {
    if (a.priority() != b.priority()) return a.priority() < b.priority();
    return a.arrival_seq() < b.arrival_seq();
  }

 private:
  friend class Scheduler;

  // Appends a sampled token and returns why generation ends with it, if it does. EOS and stop
  // ids are checked before max_tokens: a model that stops on its last allowed token stopped.
  std::optional<FinishReason> AppendOutputToken(int32_t token_id);

  std::string id_;
  RequestParams params_;
  std::vector<int32_t> token_ids_;
  int32_t num_prompt_tokens_;
  int32_t num_computed_tokens_ = 0;
  int32_t num_cached_prompt_tokens_ = 0;
  int32_t num_preemptions_ = 0;
  int64_t arrival_seq_ = 0;
  bool ever_scheduled_ = false;
  int64_t last_scheduled_step_ = 0;  // Scheduler step ids start at 1
  // An abort (or error) that came while the request was in the step being run; applied when the
  // step's output comes back, so the runner's view of the step stays valid until then.
  std::optional<FinishReason> pending_finish_;
  RequestStatus status_ = RequestStatus::kWaiting;
  std::optional<FinishReason> finish_reason_;
  BlockTable block_table_;
};

}  // namespace mlkv

#endif  // MLKV_SCHEDULER_REQUEST_H_
