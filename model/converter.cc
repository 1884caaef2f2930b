// MHA -> GQA/MQA/MLKV checkpoint conversion; see converter.h.
#include "model/converter.h"

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/checkpoint.h"
#include "model/model_writer.h"

namespace mlkv {
namespace {

absl::Status RequireStandardMha(const ModelConfig& config, const std::string& what) {
  if (config.is_standard_mha()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, ": conversion needs a standard multi-head checkpoint, but it has num_key_value_heads=",
      config.num_key_value_heads, " (of ", config.num_attention_heads,
      " heads) and num_key_value_layers=", config.num_key_value_layers, " (of ",
      config.num_hidden_layers, " layers)"));
}

// Averages the query-head groups of a K or V projection: rows [nH*d, cols] -> [nKV*d, cols],
// KV head j = mean of heads [j*g, (j+1)*g), g = nH / nKV.
//   in:  | head 0 | head 1 | head 2 | head 3 |     (nH = 4, nKV = 2, each head d rows)
//   out: |  mean(0,1)      |  mean(2,3)      |
std::vector<double> PoolHeads(const std::vector<float>& in, int64_t num_heads, int64_t num_kv_heads,
                              int64_t head_dim, int64_t cols) {
  const int64_t group = num_heads / num_kv_heads, block = head_dim * cols;
  std::vector<double> out(num_kv_heads * block, 0.0);
  for (int64_t j = 0; j < num_kv_heads; ++j) {
    double* dst = out.data() + j * block;
    for (int64_t t = 0; t < group; ++t) {
      const float* src = in.data() + (j * group + t) * block;
      for (int64_t i = 0; i < block; ++i) dst[i] += src[i];
    }
    for (int64_t i = 0; i < block; ++i) dst[i] /= static_cast<double>(group);
  }
  return out;
}

// Pools one projection over the layers of a group, given in layer order.
std::vector<float> FoldLayers(const std::vector<std::vector<double>>& per_layer,
                              KvPooling pooling) {
  std::vector<double> acc = per_layer.front();
  for (size_t l = 1; l < per_layer.size(); ++l) {
    for (size_t i = 0; i < acc.size(); ++i) {
      acc[i] = pooling == KvPooling::kPairwise ? (acc[i] + per_layer[l][i]) / 2.0
                                               : acc[i] + per_layer[l][i];
    }
  }
  if (pooling == KvPooling::kMean) {
    for (double& x : acc) x /= static_cast<double>(per_layer.size());
  }
  return std::vector<float>(acc.begin(), acc.end());
}

}  // namespace

absl::StatusOr<KvPooling> ParseKvPooling(std::string_view name) {
  if (name == "mean") return KvPooling::kMean;
  if (name == "pairwise") return KvPooling::kPairwise;
  return absl::InvalidArgumentError(
      absl::StrCat("--kv-pooling: \"", std::string(name), "\" is not one of mean, pairwise"));
}

absl::StatusOr<ModelConfig> ConvertedConfig(const ModelConfig& config, int64_t num_kv_heads,
                                            int64_t num_kv_layers) {
  RETURN_IF_ERROR(RequireStandardMha(config, "the input config"));
  if (num_kv_heads < 1 || config.num_attention_heads % num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--num-key-value-heads: ", num_kv_heads,
                                                   " must be a positive divisor of "
                                                   "num_attention_heads (",
                                                   config.num_attention_heads, ")"));
  }
  if (num_kv_layers < 1 || num_kv_layers > config.num_hidden_layers) {
    return absl::InvalidArgumentError(absl::StrCat("--num-key-value-layers: ", num_kv_layers,
                                                   " must be between 1 and num_hidden_layers (",
                                                   config.num_hidden_layers, ")"));
  }
  nlohmann::json json = config.ToJson();
  json["num_key_value_heads"] = num_kv_heads;
  json["num_key_value_layers"] = num_kv_layers;
  return ModelConfig::FromJson(json);
}

absl::StatusOr<ModelHostWeights> ConvertWeights(const ModelConfig& in_config,
                                                ModelHostWeights weights,
                                                const ModelConfig& out_config, KvPooling pooling) {
  RETURN_IF_ERROR(RequireStandardMha(in_config, "the input model"));
  const int64_t H = in_config.hidden_size, d = in_config.head_dim;
  const int64_t nH = in_config.num_attention_heads, nKV = out_config.num_key_value_heads;
  if (out_config.num_hidden_layers != in_config.num_hidden_layers || out_config.hidden_size != H ||
      out_config.num_attention_heads != nH ||
      static_cast<int64_t>(weights.layers.size()) != in_config.num_hidden_layers) {
    return absl::InvalidArgumentError("ConvertWeights: configs or weights disagree in shape");
  }
  for (int64_t l = 0; l < in_config.num_hidden_layers; ++l) {
    const LayerHostWeights& w = weights.layers[l];
    if (static_cast<int64_t>(w.key_weight.size()) != H * H ||
        static_cast<int64_t>(w.value_weight.size()) != H * H ||
        static_cast<int64_t>(w.key_bias.size()) != H ||
        static_cast<int64_t>(w.value_bias.size()) != H) {
      return absl::InvalidArgumentError(
          absl::StrCat("ConvertWeights: layer ", l, " lacks full multi-head key/value weights"));
    }
  }
  // Pool every group into its KV layer first, then drop K/V elsewhere: a group's source layers
  // are read before any of them is cleared.
  std::vector<LayerHostWeights> pooled(out_config.num_kv_groups());
  for (int64_t g = 0; g < out_config.num_kv_groups(); ++g) {
    const int64_t first = out_config.kv_layers[g], count = out_config.group_num_layers(g);
    std::vector<std::vector<double>> kw, kb, vw, vb;
    for (int64_t l = first; l < first + count; ++l) {
      const LayerHostWeights& w = weights.layers[l];
      kw.push_back(PoolHeads(w.key_weight, nH, nKV, d, H));
      kb.push_back(PoolHeads(w.key_bias, nH, nKV, d, 1));
      vw.push_back(PoolHeads(w.value_weight, nH, nKV, d, H));
      vb.push_back(PoolHeads(w.value_bias, nH, nKV, d, 1));
    }
    pooled[g].key_weight = FoldLayers(kw, pooling);
    pooled[g].key_bias = FoldLayers(kb, pooling);
    pooled[g].value_weight = FoldLayers(vw, pooling);
    pooled[g].value_bias = FoldLayers(vb, pooling);
  }
  for (int64_t l = 0; l < out_config.num_hidden_layers; ++l) {
    LayerHostWeights& w = weights.layers[l];
    const bool kv_layer = out_config.is_kv_layer(l);
    LayerHostWeights& source = pooled[out_config.layer_group[l]];
    w.key_weight = kv_layer ? std::move(source.key_weight) : std::vector<float>();
    w.key_bias = kv_layer ? std::move(source.key_bias) : std::vector<float>();
    w.value_weight = kv_layer ? std::move(source.value_weight) : std::vector<float>();
    w.value_bias = kv_layer ? std::move(source.value_bias) : std::vector<float>();
  }
  return weights;
}

absl::Status ConvertCheckpoint(const std::string& model_dir, const std::string& out_dir,
                               int64_t num_kv_heads, int64_t num_kv_layers, KvPooling pooling) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out_dir, ec) && fs::equivalent(model_dir, out_dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(out_dir, ": the output directory must differ from the input"));
  }
  ASSIGN_OR_RETURN(ModelConfig in_config,
                   ModelConfig::FromFile((fs::path(model_dir) / "config.json").string()));
  RETURN_IF_ERROR(RequireStandardMha(in_config, model_dir));
  ASSIGN_OR_RETURN(ModelConfig out_config, ConvertedConfig(in_config, num_kv_heads, num_kv_layers));
  // Keep the stored precision: embed_in's dtype stands for the checkpoint's.
  DType dtype;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> checkpoint, Checkpoint::Open(model_dir));
    ASSIGN_OR_RETURN(SafetensorsTensorInfo embed, checkpoint->Find("gpt_neox.embed_in.weight"));
    if (!embed.dtype.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("gpt_neox.embed_in.weight: dtype ", embed.dtype_name, " is not supported"));
    }
    dtype = *embed.dtype;
  }
  ASSIGN_OR_RETURN(ModelHostWeights weights, LoadModelWeights(in_config, model_dir));
  ASSIGN_OR_RETURN(weights, ConvertWeights(in_config, std::move(weights), out_config, pooling));
  RETURN_IF_ERROR(WriteModelDirectory(out_config, weights, dtype, QkvLayout::kSplit, out_dir));
  // The vocabulary does not change, so the converted model keeps the input's tokenizer.
  const fs::path tokenizer = fs::path(model_dir) / "tokenizer.json";
  if (fs::exists(tokenizer, ec)) {
    fs::copy_file(tokenizer, fs::path(out_dir) / "tokenizer.json",
                  fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat(out_dir, "/tokenizer.json: copy failed: ", ec.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace mlkv
