// What a client submits to the Engine, and what the Engine reports back while and after it runs:
// token deltas, then one final result. Reports go to a RequestObserver on the engine thread.
#ifndef MLKV_ENGINE_ENGINE_REQUEST_H_
#define MLKV_ENGINE_ENGINE_REQUEST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling_params.h"
#include "scheduler/request.h"

namespace mlkv {

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;  // log-softmax of the raw logits (before penalties and temperature)
  std::vector<std::pair<int32_t, float>> top;  // the `top_logprobs` most likely, best first
};

// New tokens of one request from one engine step.
struct TokenDelta {
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprob> logprobs;  // one per token when logprobs were asked for, else empty
};

struct RequestResult {
  absl::Status status;  // not OK: the request was refused or failed (finish_reason kError)
  FinishReason finish_reason = FinishReason::kError;
  std::optional<int32_t> stop_token_id;  // the EOS or stop id that ended it, if one did
  std::vector<int32_t> output_token_ids;
  std::vector<float> prompt_logprobs;  // when asked for: log p(prompt[i] | prompt[<i]), i >= 1
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_prompt_tokens = 0;  // served from the prefix cache
  int32_t num_preemptions = 0;
};

// Called on the engine thread: implementations must return quickly and never block (hand the
// data to another thread or to a non-blocking writer).
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void OnTokens(const TokenDelta& delta) = 0;
  // The last call for this request.
  virtual void OnFinished(const RequestResult& result) = 0;
};

struct EngineRequest {
  std::string request_id;  // unique among live requests; empty: the engine assigns one
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling;
  int32_t max_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  int32_t priority = 0;                  // lower is more urgent
  std::optional<int32_t> top_logprobs;   // set: report logprobs, with this many alternatives
  bool prompt_logprobs = false;          // computes every prompt token (no prefix-cache reuse)
  std::shared_ptr<RequestObserver> observer;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_ENGINE_REQUEST_H_
