// Converting a standard multi-head GPT-NeoX checkpoint into a GQA/MQA/MLKV one by pooling K/V
// heads within a layer and folding K/V across the layers of a sharing group (model.md,
// "Converting a standard checkpoint").
#ifndef MLKV_MODEL_CONVERTER_H_
#define MLKV_MODEL_CONVERTER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace mlkv {

// How the K/V of a sharing group's layers become the KV layer's K/V.
enum class KvPooling {
  kMean,      // plain mean over the group's layers (the paper's text)
  kPairwise,  // w = (w + w_next) / 2 in layer order, later layers weigh more (the paper's script)
};

// "mean" or "pairwise", as the command line spells them.
absl::StatusOr<KvPooling> ParseKvPooling(std::string_view name);

// `config` (standard MHA) with num_key_value_heads/num_key_value_layers replaced and the derived
// fields recomputed. Errors name the command-line flag: --num-key-value-heads must divide
// num_attention_heads; 1 <= --num-key-value-layers <= num_hidden_layers.
absl::StatusOr<ModelConfig> ConvertedConfig(const ModelConfig& config, int64_t num_kv_heads,
                                            int64_t num_kv_layers);

// The weights of a standard MHA model (`in_config`) converted for `out_config` (from
// ConvertedConfig): each KV layer's K/V = its group's layers' K/V with the query-head groups
// averaged into nKV heads (consecutive heads), then pooled over the layers; other layers lose
// their K/V. Arithmetic is in double, so K == L and nKV == nH returns the weights bit for bit.
absl::StatusOr<ModelHostWeights> ConvertWeights(const ModelConfig& in_config,
                                                ModelHostWeights weights,
                                                const ModelConfig& out_config, KvPooling pooling);

// Reads `model_dir` (config.json + safetensors, fused or split layout; must be standard MHA) and
// writes `out_dir` (config.json with the new num_key_value_heads/num_key_value_layers, and
// model.safetensors in the split layout, in the dtype of the input's embed_in), and a copy of
// the input's tokenizer.json when it has one. `out_dir` must not be `model_dir`.
absl::Status ConvertCheckpoint(const std::string& model_dir, const std::string& out_dir,
                               int64_t num_kv_heads, int64_t num_kv_layers, KvPooling pooling);

}  // namespace mlkv

#endif  // MLKV_MODEL_CONVERTER_H_
