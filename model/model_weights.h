// A checkpoint's weights in host memory, float32, in the engine's layout: the fused
// query_key_value projection already split into q, k and v (see model.md, "Weights").
#ifndef MLKV_MODEL_MODEL_WEIGHTS_H_
#define MLKV_MODEL_MODEL_WEIGHTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model_config.h"

namespace mlkv {

// Matrices are row-major [out_features][in_features], as stored by PyTorch's nn.Linear.
struct LayerHostWeights {
  std::vector<float> input_layernorm_weight, input_layernorm_bias;                    // [H]
  std::vector<float> post_attention_layernorm_weight, post_attention_layernorm_bias;  // [H]
  std::vector<float> query_weight, query_bias;  // [nH*d, H], [nH*d]; head h = rows [h*d, (h+1)*d)
  // Only in KV layers (empty elsewhere): [nKV*d, H], [nKV*d]; KV head j = rows [j*d, (j+1)*d).
  std::vector<float> key_weight, key_bias, value_weight, value_bias;
  std::vector<float> dense_weight, dense_bias;                  // [H, H], [H]
  std::vector<float> dense_h_to_4h_weight, dense_h_to_4h_bias;  // [I, H], [I]
  std::vector<float> dense_4h_to_h_weight, dense_4h_to_h_bias;  // [H, I], [H]
};

struct ModelHostWeights {
  std::vector<float> embed_in;                                      // [V, H]
  std::vector<float> final_layernorm_weight, final_layernorm_bias;  // [H]
  std::vector<float> embed_out;          // [V, H]; empty when tie_word_embeddings (use embed_in)
  std::vector<LayerHostWeights> layers;  // [L]
};

// Reads the checkpoint in `model_dir` (model.safetensors, or the shards listed in
// model.safetensors.index.json) for `config`, in either projection layout, converting F16/BF16
// to float32. Every tensor's presence, dtype and shape is checked; a tensor the model does not
// use (other than known buffers such as attention.bias) is an error, so a checkpoint for another
// variant is never half-read.
absl::StatusOr<ModelHostWeights> LoadModelWeights(const ModelConfig& config,
                                                  const std::string& model_dir);

}  // namespace mlkv

#endif  // MLKV_MODEL_MODEL_WEIGHTS_H_
