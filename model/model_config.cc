// Parsing and validation of config.json; see model_config.h.
#include "model/model_config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace mlkv {
namespace {

using nlohmann::json;

absl::Status KeyError(const std::string& key, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" ", reason));
}

// Reads an integer key; `required` keys must be present, others keep `*out` as the default.
absl::Status ReadInt(const json& j, const std::string& key, bool required, int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? KeyError(key, "is required but missing") : absl::OkStatus();
  }
  if (!it->is_number_integer()) return KeyError(key, "must be an integer, got " + it->dump());
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadPositiveInt(const json& j, const std::string& key, bool required, int64_t* out) {
  RETURN_IF_ERROR(ReadInt(j, key, required, out));
  if (*out <= 0) return KeyError(key, absl::StrCat("must be positive, got ", *out));
  return absl::OkStatus();
}

absl::Status ReadDouble(const json& j, const std::string& key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return KeyError(key, "must be a number, got " + it->dump());
  *out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ReadBool(const json& j, const std::string& key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) return KeyError(key, "must be true or false, got " + it->dump());
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadString(const json& j, const std::string& key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return KeyError(key, "must be a string, got " + it->dump());
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// Newer transformers releases renamed some keys; accept either spelling, but not both at odds.
absl::Status ReadDoubleEitherKey(const json& j, const std::string& old_key,
                                 const std::string& new_key, double* out) {
  double old_value = *out, new_value = *out;
  RETURN_IF_ERROR(ReadDouble(j, old_key, &old_value));
  RETURN_IF_ERROR(ReadDouble(j, new_key, &new_value));
  if (j.contains(old_key) && j.contains(new_key) && old_value != new_value) {
    return KeyError(new_key, absl::StrCat("disagrees with \"", old_key, "\""));
  }
  *out = j.contains(new_key) ? new_value : old_value;
  return absl::OkStatus();
}

absl::Status ParseActivation(const std::string& name, Activation* out) {
  if (name == "gelu") {
    *out = Activation::kGeluExact;
  } else if (name == "gelu_new" || name == "gelu_fast" || name == "gelu_pytorch_tanh") {
    *out = Activation::kGeluTanh;
  } else {
    return KeyError("hidden_act", "\"" + name +
                                      "\" is not supported (gelu, gelu_new, gelu_fast, "
                                      "gelu_pytorch_tanh are)");
  }
  return absl::OkStatus();
}

// Keys whose non-default values change the computation in ways this engine does not implement.
absl::Status RefuseUnsupported(const json& j) {
  if (j.value("use_key_value_mlp", false) == true) {
    return KeyError("use_key_value_mlp",
                    "is true: the experimental key/value-MLP variant is not supported");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    return KeyError("rope_scaling", "is set: scaled rotary embeddings are not supported");
  }
  if (j.contains("attention_bias") && j["attention_bias"] != true) {
    return KeyError("attention_bias",
                    "must be true: attention projections without bias are not "
                    "supported");
  }
  if (j.contains("model_type") && j["model_type"] != "gpt_neox") {
    return KeyError("model_type", "must be \"gpt_neox\", got " + j["model_type"].dump());
  }
  return absl::OkStatus();
}

absl::Status DeriveAndValidate(ModelConfig& c) {
  if (c.hidden_size % c.num_attention_heads != 0) {
    return KeyError("hidden_size",
                    absl::StrCat("(", c.hidden_size, ") must be divisible by num_attention_heads (",
                                 c.num_attention_heads, ")"));
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return KeyError("num_key_value_heads",
                    absl::StrCat("(", c.num_key_value_heads, ") must divide num_attention_heads (",
                                 c.num_attention_heads, ")"));
  }
  if (c.num_key_value_layers > c.num_hidden_layers) {
    return KeyError("num_key_value_layers", absl::StrCat("(", c.num_key_value_layers,
                                                         ") must be at most num_hidden_layers (",
                                                         c.num_hidden_layers, ")"));
  }
  if (!(c.rotary_pct >= 0.0 && c.rotary_pct <= 1.0)) {
    return KeyError("rotary_pct", absl::StrCat("must be in [0, 1], got ", c.rotary_pct));
  }
  if (!(c.rotary_emb_base > 0.0)) {
    return KeyError("rotary_emb_base", absl::StrCat("must be positive, got ", c.rotary_emb_base));
  }
  if (!(c.layer_norm_eps > 0.0)) {
    return KeyError("layer_norm_eps", absl::StrCat("must be positive, got ", c.layer_norm_eps));
  }
  if (c.bos_token_id < 0 || c.bos_token_id >= c.vocab_size) {
    return KeyError("bos_token_id",
                    absl::StrCat("(", c.bos_token_id, ") is outside the vocabulary"));
  }
  if (c.eos_token_id < 0 || c.eos_token_id >= c.vocab_size) {
    return KeyError("eos_token_id",
                    absl::StrCat("(", c.eos_token_id, ") is outside the vocabulary"));
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.rotary_dims = static_cast<int64_t>(static_cast<double>(c.head_dim) * c.rotary_pct);
  if (c.rotary_dims % 2 != 0) {
    return KeyError("rotary_pct", absl::StrCat("gives an odd number of rotary dims (",
                                               c.rotary_dims, " of head_dim ", c.head_dim, ")"));
  }
  c.kv_layers = ComputeKvLayers(c.num_hidden_layers, c.num_key_value_layers);
  c.layer_group.assign(c.num_hidden_layers, 0);
  int64_t group = 0;
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    if (group + 1 < c.num_kv_groups() && c.kv_layers[group + 1] == layer) ++group;
    c.layer_group[layer] = group;
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> ComputeKvLayers(int64_t num_layers, int64_t num_kv_layers) {
  std::vector<int64_t> layers = {0};
  const double stride = static_cast<double>(num_layers) / static_cast<double>(num_kv_layers);
  for (int64_t i = 0; i + 1 < num_kv_layers; ++i) {
    layers.push_back(static_cast<int64_t>(static_cast<double>(i + 1) * stride));
  }
  return layers;
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("the config must be a JSON object");
  RETURN_IF_ERROR(RefuseUnsupported(j));
  ModelConfig c;
  RETURN_IF_ERROR(ReadPositiveInt(j, "hidden_size", true, &c.hidden_size));
  RETURN_IF_ERROR(ReadPositiveInt(j, "num_attention_heads", true, &c.num_attention_heads));
  RETURN_IF_ERROR(ReadPositiveInt(j, "num_hidden_layers", true, &c.num_hidden_layers));
  RETURN_IF_ERROR(ReadPositiveInt(j, "intermediate_size", true, &c.intermediate_size));
  RETURN_IF_ERROR(ReadPositiveInt(j, "vocab_size", true, &c.vocab_size));
  c.max_position_embeddings = 2048;
  RETURN_IF_ERROR(ReadPositiveInt(j, "max_position_embeddings", false, &c.max_position_embeddings));
  RETURN_IF_ERROR(ReadDoubleEitherKey(j, "rotary_pct", "partial_rotary_factor", &c.rotary_pct));
  RETURN_IF_ERROR(ReadDoubleEitherKey(j, "rotary_emb_base", "rope_theta", &c.rotary_emb_base));
  RETURN_IF_ERROR(ReadDouble(j, "layer_norm_eps", &c.layer_norm_eps));
  RETURN_IF_ERROR(ReadBool(j, "use_parallel_residual", &c.use_parallel_residual));
  std::string act = "gelu";
  RETURN_IF_ERROR(ReadString(j, "hidden_act", &act));
  RETURN_IF_ERROR(ParseActivation(act, &c.hidden_act));
  RETURN_IF_ERROR(ReadBool(j, "tie_word_embeddings", &c.tie_word_embeddings));
  c.eos_token_id = 2;
  RETURN_IF_ERROR(ReadInt(j, "bos_token_id", false, &c.bos_token_id));
  RETURN_IF_ERROR(ReadInt(j, "eos_token_id", false, &c.eos_token_id));
  RETURN_IF_ERROR(ReadString(j, "torch_dtype", &c.torch_dtype));
  c.num_key_value_heads = c.num_attention_heads;
  RETURN_IF_ERROR(ReadPositiveInt(j, "num_key_value_heads", false, &c.num_key_value_heads));
  c.num_key_value_layers = c.num_hidden_layers;
  RETURN_IF_ERROR(ReadPositiveInt(j, "num_key_value_layers", false, &c.num_key_value_layers));
  std::string rope_mode = "unrotated";
  RETURN_IF_ERROR(ReadString(j, "kv_sharing_rope", &rope_mode));
  if (rope_mode == "unrotated") {
    c.kv_sharing_rope = KvSharingRope::kUnrotated;
  } else if (rope_mode == "rotated") {
    c.kv_sharing_rope = KvSharingRope::kRotated;
  } else {
    return KeyError("kv_sharing_rope",
                    "must be \"unrotated\" or \"rotated\", got \"" + rope_mode + "\"");
  }
  RETURN_IF_ERROR(DeriveAndValidate(c));
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  json j = json::parse(in, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  absl::StatusOr<ModelConfig> config = FromJson(j);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

json ModelConfig::ToJson() const {
  return json{
      {"architectures", {"GPTNeoXForCausalLM"}},
      {"model_type", "gpt_neox"},
      {"hidden_size", hidden_size},
      {"num_attention_heads", num_attention_heads},
      {"num_hidden_layers", num_hidden_layers},
      {"intermediate_size", intermediate_size},
      {"vocab_size", vocab_size},
      {"max_position_embeddings", max_position_embeddings},
      {"rotary_pct", rotary_pct},
      {"rotary_emb_base", rotary_emb_base},
      {"layer_norm_eps", layer_norm_eps},
      {"use_parallel_residual", use_parallel_residual},
      {"hidden_act", hidden_act == Activation::kGeluExact ? "gelu" : "gelu_new"},
      {"tie_word_embeddings", tie_word_embeddings},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
      {"torch_dtype", torch_dtype},
      {"num_key_value_heads", num_key_value_heads},
      {"num_key_value_layers", num_key_value_layers},
      {"kv_sharing_rope", kv_sharing_rope == KvSharingRope::kUnrotated ? "unrotated" : "rotated"},
  };
}

int64_t ModelConfig::group_num_layers(int64_t group) const {
  const int64_t end = group + 1 < num_kv_groups() ? kv_layers[group + 1] : num_hidden_layers;
  return end - kv_layers[group];
}

int64_t ModelConfig::num_matrix_parameters() const {
  const int64_t H = hidden_size, I = intermediate_size, kv = num_key_value_heads * head_dim;
  int64_t total = vocab_size * H * (tie_word_embeddings ? 1 : 2);  // embeddings
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    total += 2 * H * H + 2 * I * H;               // query, dense, MLP
    if (is_kv_layer(layer)) total += 2 * kv * H;  // key, value
  }
  return total;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t H = hidden_size, I = intermediate_size, kv = num_key_value_heads * head_dim;
  int64_t vectors = 2 * H;  // final layernorm
  for (int64_t layer = 0; layer < num_hidden_layers; ++layer) {
    vectors += 4 * H;                           // two layernorms
    vectors += 2 * H + I + H;                   // query, dense and MLP biases
    if (is_kv_layer(layer)) vectors += 2 * kv;  // key, value biases
  }
  return num_matrix_parameters() + vectors;
}

int64_t ModelConfig::weight_bytes(DType matrix_dtype) const {
  const int64_t matrices = num_matrix_parameters();
  return matrices * DTypeBytes(matrix_dtype) + (num_parameters() - matrices) * 4;
}

}  // namespace mlkv
