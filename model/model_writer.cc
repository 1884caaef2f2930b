// Host weights -> named safetensors tensors -> a model directory; see model_writer.h.
#include "model/model_writer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/checkpoint.h"

namespace mlkv {
namespace {

// Accumulates tensors, checking each vector against the shape the config implies.
class TensorList {
 public:
  explicit TensorList(DType dtype) : dtype_(dtype) {}

  absl::Status Add(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
    int64_t elements = 1;
    for (int64_t d : shape) elements *= d;
    if (static_cast<int64_t>(values.size()) != elements) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": ", values.size(), " values for shape ", ShapeString(shape)));
    }
    tensors_.push_back({std::move(name), dtype_, std::move(shape), EncodeFloats(values, dtype_)});
    return absl::OkStatus();
  }

  std::vector<SafetensorsTensor> Take() { return std::move(tensors_); }

 private:
  DType dtype_;
  std::vector<SafetensorsTensor> tensors_;
};

// The inverse of the loader's split: interleaves q, k, v per head into [3H, cols]
// (head h: q rows, then k rows, then v rows, d each).
std::vector<float> Fuse(const std::vector<float>& q, const std::vector<float>& k,
                        const std::vector<float>& v, int64_t num_heads, int64_t head_dim,
                        int64_t cols) {
  std::vector<float> fused(3 * num_heads * head_dim * cols);
  const std::vector<float>* parts[3] = {&q, &k, &v};
  const int64_t block = head_dim * cols;
  for (int64_t h = 0; h < num_heads; ++h) {
    for (int64_t s = 0; s < 3; ++s) {
      const float* src = parts[s]->data() + h * block;
      std::copy(src, src + block, fused.data() + (3 * h + s) * block);
    }
  }
  return fused;
}

absl::Status AddAttention(const ModelConfig& config, int64_t layer, const LayerHostWeights& w,
                          QkvLayout layout, TensorList& list) {
  const int64_t H = config.hidden_size, d = config.head_dim, nH = config.num_attention_heads;
  const int64_t kv_rows = config.num_key_value_heads * d;
  const std::string prefix = absl::StrCat("gpt_neox.layers.", layer, ".attention.");
  if (layout == QkvLayout::kFused) {
    // Check the parts first: Fuse reads them at the sizes the config implies.
    const std::pair<const std::vector<float>*, int64_t> parts[] = {
        {&w.query_weight, H * H}, {&w.key_weight, H * H}, {&w.value_weight, H * H},
        {&w.query_bias, H},       {&w.key_bias, H},       {&w.value_bias, H}};
    for (const auto& [part, size] : parts) {
      if (static_cast<int64_t>(part->size()) != size) {
        return absl::InvalidArgumentError(absl::StrCat(prefix, "query_key_value: layer ", layer,
                                                       " has a q/k/v part of ", part->size(),
                                                       " values, expected ", size));
      }
    }
    RETURN_IF_ERROR(list.Add(prefix + "query_key_value.weight", {3 * H, H},
                             Fuse(w.query_weight, w.key_weight, w.value_weight, nH, d, H)));
    RETURN_IF_ERROR(list.Add(prefix + "query_key_value.bias", {3 * H},
                             Fuse(w.query_bias, w.key_bias, w.value_bias, nH, d, 1)));
  } else {
    RETURN_IF_ERROR(list.Add(prefix + "query.weight", {nH * d, H}, w.query_weight));
    RETURN_IF_ERROR(list.Add(prefix + "query.bias", {nH * d}, w.query_bias));
    if (config.is_kv_layer(layer)) {
      RETURN_IF_ERROR(list.Add(prefix + "key.weight", {kv_rows, H}, w.key_weight));
      RETURN_IF_ERROR(list.Add(prefix + "key.bias", {kv_rows}, w.key_bias));
      RETURN_IF_ERROR(list.Add(prefix + "value.weight", {kv_rows, H}, w.value_weight));
      RETURN_IF_ERROR(list.Add(prefix + "value.bias", {kv_rows}, w.value_bias));
    }
  }
  RETURN_IF_ERROR(list.Add(prefix + "dense.weight", {H, H}, w.dense_weight));
  RETURN_IF_ERROR(list.Add(prefix + "dense.bias", {H}, w.dense_bias));
  return absl::OkStatus();
}

}  // namespace

std::string TorchDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "float32";
}

absl::StatusOr<std::vector<SafetensorsTensor>> ModelTensors(const ModelConfig& config,
                                                            const ModelHostWeights& weights,
                                                            DType dtype, QkvLayout layout) {
  if (layout == QkvLayout::kFused && !config.is_standard_mha()) {
    return absl::InvalidArgumentError(
        "the fused query_key_value layout needs standard multi-head attention "
        "(num_key_value_heads == num_attention_heads and num_key_value_layers == "
        "num_hidden_layers)");
  }
  if (static_cast<int64_t>(weights.layers.size()) != config.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weights have ", weights.layers.size(), " layers, the config ", config.num_hidden_layers));
  }
  const int64_t H = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  TensorList list(dtype);
  RETURN_IF_ERROR(list.Add("gpt_neox.embed_in.weight", {V, H}, weights.embed_in));
  RETURN_IF_ERROR(
      list.Add("gpt_neox.final_layer_norm.weight", {H}, weights.final_layernorm_weight));
  RETURN_IF_ERROR(list.Add("gpt_neox.final_layer_norm.bias", {H}, weights.final_layernorm_bias));
  if (!config.tie_word_embeddings) {
    RETURN_IF_ERROR(list.Add("embed_out.weight", {V, H}, weights.embed_out));
  }
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const LayerHostWeights& w = weights.layers[layer];
    const std::string prefix = absl::StrCat("gpt_neox.layers.", layer, ".");
    RETURN_IF_ERROR(list.Add(prefix + "input_layernorm.weight", {H}, w.input_layernorm_weight));
    RETURN_IF_ERROR(list.Add(prefix + "input_layernorm.bias", {H}, w.input_layernorm_bias));
    RETURN_IF_ERROR(list.Add(prefix + "post_attention_layernorm.weight", {H},
                             w.post_attention_layernorm_weight));
    RETURN_IF_ERROR(
        list.Add(prefix + "post_attention_layernorm.bias", {H}, w.post_attention_layernorm_bias));
    RETURN_IF_ERROR(AddAttention(config, layer, w, layout, list));
    RETURN_IF_ERROR(list.Add(prefix + "mlp.dense_h_to_4h.weight", {I, H}, w.dense_h_to_4h_weight));
    RETURN_IF_ERROR(list.Add(prefix + "mlp.dense_h_to_4h.bias", {I}, w.dense_h_to_4h_bias));
    RETURN_IF_ERROR(list.Add(prefix + "mlp.dense_4h_to_h.weight", {H, I}, w.dense_4h_to_h_weight));
    RETURN_IF_ERROR(list.Add(prefix + "mlp.dense_4h_to_h.bias", {H}, w.dense_4h_to_h_bias));
  }
  return list.Take();
}

absl::Status WriteModelDirectory(const ModelConfig& config, const ModelHostWeights& weights,
                                 DType dtype, QkvLayout layout, const std::string& out_dir) {
  ASSIGN_OR_RETURN(std::vector<SafetensorsTensor> tensors,
                   ModelTensors(config, weights, dtype, layout));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  nlohmann::json config_json = config.ToJson();
  config_json["torch_dtype"] = TorchDTypeName(dtype);
  const std::string config_path = (fs::path(out_dir) / "config.json").string();
  std::ofstream out(config_path, std::ios::trunc);
  out << config_json.dump(2) << "\n";
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("failed writing ", config_path));
  return WriteSafetensors((fs::path(out_dir) / kSafetensorsFileName).string(), tensors,
                          {{"format", "pt"}});
}

}  // namespace mlkv
