// The served model's tensors; see model_metadata.h.
#include "server/kserve/model_metadata.h"

#include <cstdint>
#include <string>

namespace mlkv::server::kserve {
namespace {

constexpr char kPlatform[] = "mlkv";

struct TensorSpec {
  const char* name;
  const char* datatype;      // KServe's name
  inference::DataType type;  // Triton's
  int64_t dim;               // the one dimension: 1, or -1 for any length
  bool needs_tokenizer;
};

// Canonical datatypes; requests may send any integer type for an integer and FP32 or FP64 for a
// float (docs/api.md).
constexpr TensorSpec kInputs[] = {
    {"text_input", "BYTES", inference::TYPE_STRING, 1, true},
    {"input_ids", "INT32", inference::TYPE_INT32, -1, false},
    {"stream", "BOOL", inference::TYPE_BOOL, 1, false},
    {"exclude_input_in_output", "BOOL", inference::TYPE_BOOL, 1, false},
    {"sampling_parameters", "BYTES", inference::TYPE_STRING, 1, false},
    {"max_tokens", "INT32", inference::TYPE_INT32, 1, false},
    {"temperature", "FP32", inference::TYPE_FP32, 1, false},
    {"top_k", "INT32", inference::TYPE_INT32, 1, false},
    {"top_p", "FP32", inference::TYPE_FP32, 1, false},
    {"min_p", "FP32", inference::TYPE_FP32, 1, false},
    {"repetition_penalty", "FP32", inference::TYPE_FP32, 1, false},
    {"presence_penalty", "FP32", inference::TYPE_FP32, 1, false},
    {"frequency_penalty", "FP32", inference::TYPE_FP32, 1, false},
    {"random_seed", "UINT64", inference::TYPE_UINT64, 1, false},
    {"ignore_eos", "BOOL", inference::TYPE_BOOL, 1, false},
    {"stop_words", "BYTES", inference::TYPE_STRING, -1, true},
    {"stop_token_ids", "INT32", inference::TYPE_INT32, -1, false},
    {"bad_words", "BYTES", inference::TYPE_STRING, -1, false},
};

constexpr TensorSpec kOutputs[] = {
    {"text_output", "BYTES", inference::TYPE_STRING, 1, true},
    {"output_ids", "INT32", inference::TYPE_INT32, -1, false},
};

// Calls add(spec) for each spec the model has.
template <typename Add>
void ForEachTensor(absl::Span<const TensorSpec> specs, const KServeModel& model, Add add) {
  for (const TensorSpec& spec : specs) {
    if (!spec.needs_tokenizer || model.tokenizer != nullptr) add(spec);
  }
}

void Describe(const TensorSpec& spec, inference::ModelMetadataResponse::TensorMetadata* tensor) {
  tensor->set_name(spec.name);
  tensor->set_datatype(spec.datatype);
  tensor->add_shape(spec.dim);
}

}  // namespace

inference::ServerMetadataResponse BuildServerMetadata() {
  inference::ServerMetadataResponse out;
  out.set_name("mlkv-serve");
  out.set_version("0.1.0");
  // KServe/Triton extension names: ModelConfig, raw tensor data, request parameters.
  for (const char* extension : {"model_configuration", "binary_tensor_data", "parameters"}) {
    out.add_extensions(extension);
  }
  return out;
}

inference::ModelMetadataResponse BuildModelMetadata(const KServeModel& model) {
  inference::ModelMetadataResponse out;
  out.set_name(model.name);
  out.add_versions(std::string(kModelVersion));  // (from a char*, GCC 12 warns falsely)
  out.set_platform(kPlatform);
  ForEachTensor(kInputs, model, [&](const TensorSpec& s) { Describe(s, out.add_inputs()); });
  ForEachTensor(kOutputs, model, [&](const TensorSpec& s) { Describe(s, out.add_outputs()); });
  return out;
}

inference::ModelConfigResponse BuildModelConfig(const KServeModel& model) {
  inference::ModelConfigResponse out;
  inference::ModelConfig& config = *out.mutable_config();
  config.set_name(model.name);
  config.set_platform(kPlatform);
  config.set_backend(kPlatform);
  config.set_max_batch_size(0);
  config.mutable_model_transaction_policy()->set_decoupled(true);
  ForEachTensor(kInputs, model, [&](const TensorSpec& s) {
    inference::ModelInput* input = config.add_input();
    input->set_name(s.name);
    input->set_data_type(s.type);
    input->add_dims(s.dim);
    input->set_optional(true);
  });
  ForEachTensor(kOutputs, model, [&](const TensorSpec& s) {
    inference::ModelOutput* output = config.add_output();
    output->set_name(s.name);
    output->set_data_type(s.type);
    output->add_dims(s.dim);
  });
  return out;
}

}  // namespace mlkv::server::kserve
