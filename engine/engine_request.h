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
#include "absl/time/time.h"
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
  // The text that became final with these tokens, when the engine has a tokenizer: never a
  // partial UTF-8 character, and never text that might still turn out to start a stop string
  // (such text is held back until it is known not to). All deltas' texts concatenated are the
  // request's output text, cut before the matched stop string. Text held back when the request
  // ends comes in one last delta with no token ids, just before OnFinished. Special tokens (the
  // EOS) and ids the tokenizer lacks add no text, as in Hugging Face's decode (output_text.h).
  std::string text;
};

// When a request passed the milestones of its life (absl::InfinitePast(): not reached).
struct RequestTimings {
  absl::Time arrival = absl::InfinitePast();          // Engine::Submit accepted it
  absl::Time first_scheduled = absl::InfinitePast();  // a step first computed any of it
  absl::Time first_token = absl::InfinitePast();      // its first output token was sampled
  absl::Time finished = absl::InfinitePast();         // it ended (any reason)
};

struct RequestResult {
  std::string request_id;
  absl::Status status;  // not OK: the request was refused or failed (finish_reason kError)
  FinishReason finish_reason = FinishReason::kError;
  std::optional<int32_t> stop_token_id;    // the EOS or stop id that ended it, if one did
  std::optional<std::string> stop_string;  // the stop string that ended it, if one did
  std::vector<int32_t> output_token_ids;
  std::vector<float> prompt_logprobs;  // when asked for: log p(prompt[i] | prompt[<i]), i >= 1
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_prompt_tokens = 0;  // served from the prefix cache
  int32_t num_preemptions = 0;
  RequestTimings timings;
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
  // The prompt: token ids, or text that Submit encodes with the engine's tokenizer (exactly one
  // of the two; text needs EngineOptions::tokenizer).
  std::vector<int32_t> prompt_token_ids;
  std::optional<std::string> prompt_text;
  SamplingParams sampling;
  int32_t max_tokens = 16;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  // Strings that end generation when they appear in the output text (needs the tokenizer): the
  // request finishes with kStop, RequestResult::stop_string set, and the text cut before it.
  std::vector<std::string> stop_strings;
  int32_t priority = 0;                 // lower is more urgent
  std::optional<int32_t> top_logprobs;  // set: report logprobs, with this many alternatives
  bool prompt_logprobs = false;         // computes every prompt token (no prefix-cache reuse)
  std::shared_ptr<RequestObserver> observer;
};

}  // namespace mlkv

#endif  // MLKV_ENGINE_ENGINE_REQUEST_H_
