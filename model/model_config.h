// The model's shape as read from a Hugging Face config.json (GPT-NeoX keys plus the MLKV keys),
// validated, with the derived KV-layer placement and sharing groups (../shared/design/model.md).
#ifndef MLKV_MODEL_MODEL_CONFIG_H_
#define MLKV_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/dtype.h"
#include "nlohmann/json.hpp"

namespace mlkv {

// Which keys the layers that reuse a group's K/V attend to (model.md, `kv_sharing_rope`).
enum class KvSharingRope { kUnrotated, kRotated };

enum class Activation { kGeluExact, kGeluTanh };

struct ModelConfig {
  int64_t hidden_size = 0;          // H
  int64_t num_attention_heads = 0;  // nH
  int64_t num_hidden_layers = 0;    // L
  int64_t intermediate_size = 0;    // I
  int64_t vocab_size = 0;           // V
  int64_t max_position_embeddings = 0;
  double rotary_pct = 0.25;
  double rotary_emb_base = 10000.0;
  double layer_norm_eps = 1e-5;
  bool use_parallel_residual = true;
  Activation hidden_act = Activation::kGeluExact;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 0;
  std::string torch_dtype = "float32";
  int64_t num_key_value_heads = 0;   // nKV
  int64_t num_key_value_layers = 0;  // K
  KvSharingRope kv_sharing_rope = KvSharingRope::kUnrotated;

  // Derived by FromJson; consistent with the fields above.
  int64_t head_dim = 0;              // d = H / nH
  int64_t rotary_dims = 0;           // r = int(d * rotary_pct)
  std::vector<int64_t> kv_layers;    // the K layers that compute K/V, ascending, [0] == 0
  std::vector<int64_t> layer_group;  // [L]: sharing group (index into kv_layers) of each layer

  // Parses and validates a config.json document. Errors name the key and the reason.
  static absl::StatusOr<ModelConfig> FromJson(const nlohmann::json& json);
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);
  // The config.json this config would be read from (round trip with FromJson).
  nlohmann::json ToJson() const;

  int64_t num_kv_groups() const { return static_cast<int64_t>(kv_layers.size()); }
  bool is_kv_layer(int64_t layer) const { return kv_layers[layer_group[layer]] == layer; }
  // Number of query heads that read one KV head: nH / nKV.
  int64_t query_group_size() const { return num_attention_heads / num_key_value_heads; }
  // Number of layers in sharing group g.
  int64_t group_num_layers(int64_t group) const;
  // Whether the fused query_key_value layout is possible (standard MHA Pythia).
  bool is_standard_mha() const {
    return num_key_value_heads == num_attention_heads && num_key_value_layers == num_hidden_layers;
  }
  // KV cache bytes for one token over all groups: 2 x K x nKV x d x bytes.
  int64_t kv_bytes_per_token(int64_t kv_dtype_bytes) const {
    return 2 * num_key_value_layers * num_key_value_heads * head_dim * kv_dtype_bytes;
  }
  // Number of weight parameters (embed_out counted once when tied).
  int64_t num_parameters() const;
  // Of those, the ones in weight matrices and embedding tables (the rest are layernorm
  // parameters and biases).
  int64_t num_matrix_parameters() const;
  // Bytes the model's weights take on a backend when the matrices and tables are stored as
  // `matrix_dtype` and the rest as float32 (Model::Create).
  int64_t weight_bytes(DType matrix_dtype) const;
};

// model.md: kv_layers = [0] + [int((i + 1) * (L / K)) for i in range(K - 1)].
std::vector<int64_t> ComputeKvLayers(int64_t num_layers, int64_t num_kv_layers);

}  // namespace mlkv

#endif  // MLKV_MODEL_MODEL_CONFIG_H_
