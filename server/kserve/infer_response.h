// The responses to a KServe request: outputs holding the completion (or the part of it that a
// streamed response carries) and the parameters of the request's last response.
#ifndef MLKV_SERVER_KSERVE_INFER_RESPONSE_H_
#define MLKV_SERVER_KSERVE_INFER_RESPONSE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_request.h"
#include "inference/grpc_service.pb.h"
#include "server/kserve/infer_request.h"

namespace mlkv::server::kserve {

// Text and token ids gathered from engine deltas, until a response takes them.
struct Completion {
  std::string text;
  std::vector<int32_t> token_ids;

  void Append(const TokenDelta& delta);
  bool empty() const { return text.empty() && token_ids.empty(); }
};

// A response whose outputs (those `shape` asks for) hold `completion`; with `completion` null,
// a response without outputs (a stream's empty final response).
inference::ModelInferResponse MakeResponse(const std::string& model_name,
                                           const ResponseShape& shape,
                                           const Completion* completion);

// What the last response of a request adds: the parameters finish_reason ("stop", "length",
// "abort"), prompt_tokens, completion_tokens and cached_prompt_tokens.
void AddResultParameters(const RequestResult& result, inference::ModelInferResponse* response);

// The parameter by which a stream's response says whether it is its request's last one.
void SetFinalResponse(bool final, inference::ModelInferResponse* response);

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_INFER_RESPONSE_H_
