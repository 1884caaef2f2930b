// What the KServe metadata and configuration RPCs say about the server and the served model: its
// input and output tensors, their datatypes and shapes, in KServe's and in Triton's form.
#ifndef MLKV_SERVER_KSERVE_MODEL_METADATA_H_
#define MLKV_SERVER_KSERVE_MODEL_METADATA_H_

#include "inference/grpc_service.pb.h"
#include "server/kserve/infer_request.h"

namespace mlkv::server::kserve {

// The server's name, version and the KServe extensions it implements.
inference::ServerMetadataResponse BuildServerMetadata();

// The tensors a request may use and a response holds (text ones only with a tokenizer). Every
// input is optional: the prompt is text_input or input_ids, and the rest have defaults.
inference::ModelMetadataResponse BuildModelMetadata(const KServeModel& model);

// The same as Triton's model configuration: no batch dimension (max_batch_size 0) and decoupled
// (a request may get many responses), as Triton's LLM backends are.
inference::ModelConfigResponse BuildModelConfig(const KServeModel& model);

}  // namespace mlkv::server::kserve

#endif  // MLKV_SERVER_KSERVE_MODEL_METADATA_H_
