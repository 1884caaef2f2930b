// A KServe v2 ModelInferRequest turned into an engine request plus what its responses must
// hold. Every invalid tensor, parameter or setting is refused here with a message that starts
// with its name; see docs/api.md ("KServe v2") for the tensors and parameters.
#ifndef MLKV_SERVER_KSERVE_INFER_REQUEST_H_
#define MLKV_SERVER_KSERVE_INFER_REQUEST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine_request.h"
#include "inference/grpc_service.pb.h"
#include "model/model_config.h"
#include "server/kserve/tensor_data.h"
#include "tokenizer/tokenizer.h"

namespace mlkv::server::kserve {

// The model as KServe names and describes it.
struct KServeModel {
  std::string name;
  const ModelConfig* config = nullptr;   // not owned
  const Tokenizer* tokenizer = nullptr;  // not owned; null: token ids only, no text tensors
};

// The only version of the model, as KServe versions go.
inline constexpr char kModelVersion[] = "1";

// What every response to one request carries besides the tokens.
struct ResponseShape {
  std::string id;                      // the request's id, echoed
  bool text_output = true;             // the `text_output` tensor (BYTES [1])
  bool output_ids = true;              // the `output_ids` tensor (INT32 [n]): generated ids only
  Encoding encoding = Encoding::kRaw;  // as the request sent its inputs
};

struct InferRequest {
  EngineRequest engine;  // without id and observer
  ResponseShape response;
  // Stream tokens as they come (the `stream` input; ModelStreamInfer only), else one response
  // with the whole completion.
  bool stream = false;
  // Put in front of the completion in text_output: the prompt, unless excluded
  // (`exclude_input_in_output`; streaming always excludes it).
  std::string text_prefix;
  // The `triton_enable_empty_final_response` parameter: a stream's last response is an empty
  // one that only says it is the last.
  bool empty_final_response = false;
};

enum class Rpc { kModelInfer, kModelStreamInfer };

// NotFound when the request names another model or version; InvalidArgument naming the input,
// output, parameter or setting at fault for anything else the server cannot serve. Pure;
// thread-safe.
absl::StatusOr<InferRequest> ParseInferRequest(const inference::ModelInferRequest& request,
                                               const KServeModel& model, Rpc rpc);

// NotFound unless `name` is the model's and `version` is empty or its version.
absl::Status CheckModel(const KServeModel& model, const std::string& name,
                        const std::string& version);

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_INFER_REQUEST_H_
