// Translation between the wire messages of Generate (mlkv.v1) and the engine's request and
// reports: every invalid field is refused here with a message that starts with its name.
#ifndef MLKV_SERVER_GENERATE_REQUEST_H_
#define MLKV_SERVER_GENERATE_REQUEST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_request.h"
#include "mlkv/v1/mlkv.pb.h"
#include "model/model_config.h"
#include "scheduler/scheduler_config.h"

namespace mlkv::server {

// Most alternatives a request may ask per token (GenerateRequest.logprobs), as the engine allows.
inline constexpr int32_t kMaxLogprobs = 20;
// Longest request_id accepted: ids go into every log line about the request.
inline constexpr size_t kMaxRequestIdLength = 256;
// Most stop strings per request, and their longest: each generated token is matched against
// every stop string's prefixes, so both bound the work a request adds to each engine step.
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 256;

// What the server accepts: fixed at start-up.
struct RequestLimits {
  // The limits of an engine scheduled by `scheduler`.
  static RequestLimits Of(const SchedulerConfig& scheduler) {
    return {scheduler.max_model_len, int64_t{scheduler.num_blocks} * scheduler.block_size};
  }

  int32_t max_model_len = 0;       // prompt + max_tokens at most
  int64_t kv_capacity_tokens = 0;  // tokens the whole KV cache holds (num_blocks x block_size)
};

// The engine request for `request` on a model of `config`, without an observer.
// InvalidArgument naming the field for anything the engine would refuse (including a request
// that could never fit the whole cache), except what needs the tokenizer: a text prompt's
// length, stop strings' contents and whether the model has a tokenizer at all are the engine's
// to check (its errors name the field too). Pure; thread-safe.
absl::StatusOr<EngineRequest> ToEngineRequest(const v1::GenerateRequest& request,
                                              const ModelConfig& config,
                                              const RequestLimits& limits);

v1::FinishReason ToProto(FinishReason reason);

// Appends an engine delta to a wire delta (deltas gathered while a write is in flight merge).
void AppendDelta(const TokenDelta& delta, v1::TokenDelta* out);

// The final message for a request that ended without error.
v1::GenerateResult ToGenerateResult(const std::string& request_id, const RequestResult& result);

}  // namespace mlkv::server

#endif  // MLKV_SERVER_GENERATE_REQUEST_H_
