// Building KServe responses; see infer_response.h.
#include "server/kserve/infer_response.h"

#include "scheduler/request.h"

namespace mlkv::server::kserve {

void Completion::Append(const TokenDelta& delta) {
  text += delta.text;
  token_ids.insert(token_ids.end(), delta.token_ids.begin(), delta.token_ids.end());
}

inference::ModelInferResponse MakeResponse(const std::string& model_name,
                                           const ResponseShape& shape,
                                           const Completion* completion) {
  inference::ModelInferResponse response;
  response.set_model_name(model_name);
  response.set_model_version(kModelVersion);
  response.set_id(shape.id);
  if (completion == nullptr) return response;
  if (shape.text_output) {
    AddBytesOutput("text_output", completion->text, shape.encoding, &response);
  }
  if (shape.output_ids) {
    AddInt32Output("output_ids", completion->token_ids, shape.encoding, &response);
  }
  return response;
}

void AddResultParameters(const RequestResult& result, inference::ModelInferResponse* response) {
  auto& parameters = *response->mutable_parameters();
  parameters["finish_reason"].set_string_param(FinishReasonName(result.finish_reason));
  parameters["prompt_tokens"].set_int64_param(result.num_prompt_tokens);
  parameters["completion_tokens"].set_int64_param(
      static_cast<int64_t>(result.output_token_ids.size()));
  parameters["cached_prompt_tokens"].set_int64_param(result.num_cached_prompt_tokens);
}

void SetFinalResponse(bool final, inference::ModelInferResponse* response) {
  (*response->mutable_parameters())["triton_final_response"].set_bool_param(final);
}

}  // namespace mlkv::server::kserve
