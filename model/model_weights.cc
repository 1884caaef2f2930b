// LoadModelWeights: reads a checkpoint in the fused or the split projection layout into the
// engine's split layout, checking every tensor's presence and shape; see model_weights.h.
#include "model/model_weights.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/checkpoint.h"

namespace mlkv {
namespace {

// Buffers PyTorch saved with some GPT-NeoX checkpoints: the causal mask and rotary frequencies,
// all recomputed by the engine from the config.
constexpr std::string_view kIgnoredSuffixes[] = {".attention.bias", ".attention.masked_bias",
                                                 ".attention.rotary_emb.inv_freq"};

bool IsIgnoredBuffer(std::string_view name) {
  if (!name.starts_with("gpt_neox.layers.")) return false;
  for (std::string_view suffix : kIgnoredSuffixes) {
    if (name.ends_with(suffix)) return true;
  }
  return false;
}

// Reads tensors and remembers which were used, so that leftovers can be reported.
class TrackingReader {
 public:
  explicit TrackingReader(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  absl::Status Read(const std::string& name, const std::vector<int64_t>& shape,
                    std::vector<float>* out) {
    used_.insert(name);
    ASSIGN_OR_RETURN(*out, checkpoint_.ReadFloat(name, shape));
    return absl::OkStatus();
  }
  bool Has(const std::string& name) const { return checkpoint_.Contains(name); }
  void MarkUsed(const std::string& name) { used_.insert(name); }

  // Every tensor must have been used or be a known buffer.
  absl::Status CheckNothingLeft(const ModelConfig& config) const {
    std::vector<std::string> unexpected;
    for (const std::string& name : checkpoint_.TensorNames()) {
      if (!used_.contains(name) && !IsIgnoredBuffer(name)) unexpected.push_back(name);
    }
    if (unexpected.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        unexpected.front(), ": unexpected tensor in ", checkpoint_.dir(),
        unexpected.size() > 1 ? absl::StrCat(" (and ", unexpected.size() - 1, " more)") : "",
        "; the config has ", config.num_hidden_layers, " layers, ", config.num_attention_heads,
        " query heads, ", config.num_key_value_heads, " KV heads, KV layers [",
        absl::StrJoin(config.kv_layers, ","), "]: is this a checkpoint of another variant?"));
  }

 private:
  const Checkpoint& checkpoint_;
  std::set<std::string> used_;
};

// Splits a fused [3H, H] (or [3H]) projection whose rows are grouped per head as
//   head 0: q rows [0,d) | k rows [d,2d) | v rows [2d,3d) | head 1: q ... | ...
// into q, k, v of [H, cols] each; `cols` is H for weights and 1 for biases.
void SplitFused(const std::vector<float>& fused, int64_t num_heads, int64_t head_dim, int64_t cols,
                std::vector<float>* q, std::vector<float>* k, std::vector<float>* v) {
  const int64_t rows = num_heads * head_dim;
  std::vector<float>* parts[3] = {q, k, v};
  for (std::vector<float>* part : parts) part->resize(rows * cols);
  for (int64_t h = 0; h < num_heads; ++h) {
    for (int64_t s = 0; s < 3; ++s) {
      const float* src = fused.data() + ((3 * h + s) * head_dim) * cols;
      std::copy(src, src + head_dim * cols, parts[s]->data() + h * head_dim * cols);
    }
  }
}

absl::Status LoadAttention(const ModelConfig& config, int64_t layer, TrackingReader& reader,
                           LayerHostWeights& w) {
  const int64_t H = config.hidden_size, d = config.head_dim;
  const int64_t q_rows = config.num_attention_heads * d;
  const int64_t kv_rows = config.num_key_value_heads * d;
  const std::string prefix = absl::StrCat("gpt_neox.layers.", layer, ".attention.");
  const std::string fused_weight = prefix + "query_key_value.weight";
  const std::string fused_bias = prefix + "query_key_value.bias";
  if (reader.Has(fused_weight) || reader.Has(fused_bias)) {
    if (!config.is_standard_mha()) {
      return absl::InvalidArgumentError(absl::StrCat(
          reader.Has(fused_weight) ? fused_weight : fused_bias,
          ": the fused query_key_value layout is only valid for standard multi-head attention, "
          "but the config has num_key_value_heads=",
          config.num_key_value_heads, " and num_key_value_layers=", config.num_key_value_layers));
    }
    std::vector<float> fused;
    RETURN_IF_ERROR(reader.Read(fused_weight, {3 * H, H}, &fused));
    SplitFused(fused, config.num_attention_heads, d, H, &w.query_weight, &w.key_weight,
               &w.value_weight);
    RETURN_IF_ERROR(reader.Read(fused_bias, {3 * H}, &fused));
    SplitFused(fused, config.num_attention_heads, d, 1, &w.query_bias, &w.key_bias, &w.value_bias);
  } else {
    RETURN_IF_ERROR(reader.Read(prefix + "query.weight", {q_rows, H}, &w.query_weight));
    RETURN_IF_ERROR(reader.Read(prefix + "query.bias", {q_rows}, &w.query_bias));
    // Key and value exist in KV layers only; elsewhere they are left for CheckNothingLeft.
    if (config.is_kv_layer(layer)) {
      RETURN_IF_ERROR(reader.Read(prefix + "key.weight", {kv_rows, H}, &w.key_weight));
      RETURN_IF_ERROR(reader.Read(prefix + "key.bias", {kv_rows}, &w.key_bias));
      RETURN_IF_ERROR(reader.Read(prefix + "value.weight", {kv_rows, H}, &w.value_weight));
      RETURN_IF_ERROR(reader.Read(prefix + "value.bias", {kv_rows}, &w.value_bias));
    }
  }
  RETURN_IF_ERROR(reader.Read(prefix + "dense.weight", {H, H}, &w.dense_weight));
  RETURN_IF_ERROR(reader.Read(prefix + "dense.bias", {H}, &w.dense_bias));
  return absl::OkStatus();
}

absl::Status LoadLayer(const ModelConfig& config, int64_t layer, TrackingReader& reader,
                       LayerHostWeights& w) {
  const int64_t H = config.hidden_size, I = config.intermediate_size;
  const std::string prefix = absl::StrCat("gpt_neox.layers.", layer, ".");
  RETURN_IF_ERROR(reader.Read(prefix + "input_layernorm.weight", {H}, &w.input_layernorm_weight));
  RETURN_IF_ERROR(reader.Read(prefix + "input_layernorm.bias", {H}, &w.input_layernorm_bias));
  RETURN_IF_ERROR(reader.Read(prefix + "post_attention_layernorm.weight", {H},
                              &w.post_attention_layernorm_weight));
  RETURN_IF_ERROR(
      reader.Read(prefix + "post_attention_layernorm.bias", {H}, &w.post_attention_layernorm_bias));
  RETURN_IF_ERROR(LoadAttention(config, layer, reader, w));
  RETURN_IF_ERROR(
      reader.Read(prefix + "mlp.dense_h_to_4h.weight", {I, H}, &w.dense_h_to_4h_weight));
  RETURN_IF_ERROR(reader.Read(prefix + "mlp.dense_h_to_4h.bias", {I}, &w.dense_h_to_4h_bias));
  RETURN_IF_ERROR(
      reader.Read(prefix + "mlp.dense_4h_to_h.weight", {H, I}, &w.dense_4h_to_h_weight));
  RETURN_IF_ERROR(reader.Read(prefix + "mlp.dense_4h_to_h.bias", {H}, &w.dense_4h_to_h_bias));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelHostWeights> LoadModelWeights(const ModelConfig& config,
                                                  const std::string& model_dir) {
  ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(model_dir));
  TrackingReader reader(*checkpoint);
  const int64_t H = config.hidden_size, V = config.vocab_size;
  ModelHostWeights weights;
  RETURN_IF_ERROR(reader.Read("gpt_neox.embed_in.weight", {V, H}, &weights.embed_in));
  RETURN_IF_ERROR(
      reader.Read("gpt_neox.final_layer_norm.weight", {H}, &weights.final_layernorm_weight));
  RETURN_IF_ERROR(
      reader.Read("gpt_neox.final_layer_norm.bias", {H}, &weights.final_layernorm_bias));
  if (config.tie_word_embeddings) {
    // Tied: the output projection is embed_in, whatever a stored copy says, as in transformers.
    reader.MarkUsed("embed_out.weight");
  } else if (!reader.Has("embed_out.weight")) {
    return absl::NotFoundError(
        absl::StrCat("embed_out.weight: tensor missing from the checkpoint "
                     "in ",
                     model_dir, " and tie_word_embeddings is false"));
  } else {
    RETURN_IF_ERROR(reader.Read("embed_out.weight", {V, H}, &weights.embed_out));
  }
  weights.layers.resize(config.num_hidden_layers);
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    RETURN_IF_ERROR(LoadLayer(config, layer, reader, weights.layers[layer]));
  }
  RETURN_IF_ERROR(reader.CheckNothingLeft(config));
  return weights;
}

}  // namespace mlkv
