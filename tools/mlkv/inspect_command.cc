// `mlkv inspect`: a model's configuration, KV-layer placement and sharing groups, parameter
// count and KV cache bytes per token, without loading the weights.
#include <cstdio>

#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "engine/model_config.h"
#include "nlohmann/json.hpp"
#include "tools/mlkv/commands.h"
#include "tools/mlkv/model_flags.h"

namespace mlkv::cli {

absl::Status RunInspect(const Args& args) {
  ASSIGN_OR_RETURN(Flags flags, Flags::Parse(args, {"model", "kv-dtype", "format"}));
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  ASSIGN_OR_RETURN(DType kv_dtype, KvDtypeFromFlags(flags));
  ASSIGN_OR_RETURN(std::string dir, flags.RequiredString("model"));
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(dir + "/config.json"));

  std::vector<std::vector<int64_t>> groups(config.num_kv_groups());
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    groups[config.layer_group[layer]].push_back(layer);
  }
  nlohmann::json out = config.ToJson();
  out["head_dim"] = config.head_dim;
  out["rotary_dims"] = config.rotary_dims;
  out["kv_layers"] = config.kv_layers;
  out["groups"] = groups;
  out["num_parameters"] = config.num_parameters();
  out["kv_dtype"] = std::string(DTypeName(kv_dtype));
  out["kv_bytes_per_token"] = config.kv_bytes_per_token(DTypeBytes(kv_dtype));
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
    return absl::OkStatus();
  }
  std::printf("layers %lld, hidden %lld, heads %lld (head_dim %lld), intermediate %lld, vocab %lld\n",
              (long long)config.num_hidden_layers, (long long)config.hidden_size,
              (long long)config.num_attention_heads, (long long)config.head_dim,
              (long long)config.intermediate_size, (long long)config.vocab_size);
  std::printf("KV heads per KV layer %lld, KV layers %lld: [%s], sharing %s keys\n",
              (long long)config.num_key_value_heads, (long long)config.num_key_value_layers,
              absl::StrJoin(config.kv_layers, ", ").c_str(),
              out["kv_sharing_rope"].get<std::string>().c_str());
  for (size_t g = 0; g < groups.size(); ++g) {
    std::printf("  group %zu: layers %s\n", g, absl::StrJoin(groups[g], ", ").c_str());
  }
  std::printf("parameters %lld\n", (long long)config.num_parameters());
  std::printf("KV cache bytes per token (%s) %lld\n", std::string(DTypeName(kv_dtype)).c_str(),
              (long long)out["kv_bytes_per_token"].get<int64_t>());
  return absl::OkStatus();
}

}  // namespace mlkv::cli
