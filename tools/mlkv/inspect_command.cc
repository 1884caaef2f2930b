// `mlkv inspect`: a model's configuration, KV-layer placement and sharing groups, parameter
// count and weight bytes, KV cache bytes per token, and what a KV budget holds, without loading the
// weights.
#include <cstdio>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/model_workspace.h"
#include "model/model_config.h"
#include "nlohmann/json.hpp"
#include "planning/host_memory.h"
#include "planning/kv_capacity.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// The KV budget as the flags give it, and what it holds.
struct BudgetPlan {
  KvBudget budget;
  KvCapacity capacity;
};

// Plans the KV cache for the budget flags; nullopt when neither budget flag is given. The budget
// is left to PlanKvCapacity and the scheduling limits to SchedulerConfigFromFlags, as in the
// engine, so that `inspect` refuses exactly what the engine refuses, in its words.
absl::StatusOr<std::optional<BudgetPlan>> PlanFromFlags(const Flags& flags,
                                                        const ModelConfig& config, DType kv_dtype,
                                                        DType weight_dtype) {
  const bool bytes_form = flags.Has("kv-cache-bytes");
  const bool fraction_form = flags.Has("kv-cache-fraction");
  if (!bytes_form && !fraction_form) {
    for (const char* name : {"memory-limit-bytes", "max-model-len", "block-size",
                             "max-num-batched-tokens", "max-num-seqs"}) {
      if (flags.Has(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, ": sizes a KV budget, so it needs --kv-cache-bytes or ",
                         "--kv-cache-fraction"));
      }
    }
    return std::optional<BudgetPlan>();
  }
  if (bytes_form && !fraction_form) {
    for (const char* name : {"memory-limit-bytes", "max-num-batched-tokens", "max-num-seqs"}) {
      if (flags.Has(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name,
                         ": applies to --kv-cache-fraction only; --kv-cache-bytes is the budget "
                         "itself"));
      }
    }
  }
  ASSIGN_OR_RETURN(const SchedulerConfig scheduler, SchedulerConfigFromFlags(flags, config));
  BudgetPlan plan;
  ASSIGN_OR_RETURN(plan.budget.kv_cache_bytes,
                   flags.OptionalInt("kv-cache-bytes", kInt64Min, kInt64Max));
  if (fraction_form) {
    constexpr double kHuge = std::numeric_limits<double>::max();
    ASSIGN_OR_RETURN(plan.budget.kv_cache_fraction,
                     flags.Double("kv-cache-fraction", 0.0, -kHuge, kHuge));
    // Only the fraction form needs the limit, so only it reads the host's memory.
    ASSIGN_OR_RETURN(plan.budget.memory_limit_bytes,
                     flags.Int("memory-limit-bytes", HostMemoryBytes(), kInt64Min, kInt64Max));
    if (!flags.Has("memory-limit-bytes")) {
      plan.budget.memory_limit_source = "the host's memory; set --memory-limit-bytes to change it";
    }
    plan.budget.weight_bytes = config.weight_bytes(weight_dtype);
    // What the engine reserves at start-up for the largest step of these limits.
    ASSIGN_OR_RETURN(plan.budget.workspace_bytes, WorkspaceBytes(config, LargestStep(scheduler)));
  }
  ASSIGN_OR_RETURN(plan.capacity, PlanKvCapacity(config, kv_dtype, scheduler.block_size,
                                                 scheduler.max_model_len, plan.budget));
  return std::optional<BudgetPlan>(plan);
}

}  // namespace

absl::Status RunInspect(const Args& args) {
  ASSIGN_OR_RETURN(
      Flags flags,
      Flags::Parse(args, {"model", "kv-dtype", "weight-dtype", "format", "kv-cache-bytes",
                          "kv-cache-fraction", "memory-limit-bytes", "max-model-len", "block-size",
                          "max-num-batched-tokens", "max-num-seqs"}));
  if (PrintUsageIfAsked(flags, "mlkv inspect")) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  ASSIGN_OR_RETURN(DType kv_dtype, DTypeFromFlags(flags, "kv-dtype"));
  ASSIGN_OR_RETURN(DType weight_dtype, DTypeFromFlags(flags, "weight-dtype"));
  ASSIGN_OR_RETURN(std::string dir, flags.RequiredString("model"));
  ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(dir + "/config.json"));
  if (config.num_parameters() > kInt64Max / 4) {
    return absl::InvalidArgumentError("model config: float32 weight bytes overflow 64 bits");
  }
  ASSIGN_OR_RETURN(std::optional<BudgetPlan> plan,
                   PlanFromFlags(flags, config, kv_dtype, weight_dtype));

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
  out["weight_dtype"] = std::string(DTypeName(weight_dtype));
  out["weight_bytes"] = config.weight_bytes(weight_dtype);
  out["kv_dtype"] = std::string(DTypeName(kv_dtype));
  out["kv_bytes_per_token"] = config.kv_bytes_per_token(DTypeBytes(kv_dtype));
  if (plan) {
    const KvCapacity& c = plan->capacity;
    if (plan->budget.kv_cache_fraction) {
      out["kv_cache_fraction"] = *plan->budget.kv_cache_fraction;
      out["memory_limit_bytes"] = plan->budget.memory_limit_bytes;
      out["workspace_bytes"] = plan->budget.workspace_bytes;
    }
    out["kv_budget_bytes"] = c.budget_bytes;
    out["block_size"] = c.block_size;
    out["block_bytes"] = c.block_bytes;
    out["num_blocks"] = c.num_blocks;
    out["num_tokens"] = c.num_tokens;
    out["max_model_len"] = c.max_model_len;
    out["blocks_per_sequence"] = c.blocks_per_sequence;
    out["max_concurrent_sequences"] = c.max_concurrent_sequences;
  }
  if (json) {
    std::printf("%s\n", out.dump(2).c_str());
    return absl::OkStatus();
  }
  std::printf(
      "layers %lld, hidden %lld, heads %lld (head_dim %lld), intermediate %lld, vocab %lld\n",
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
  std::printf("parameters %lld: %lld bytes as %s weights\n", (long long)config.num_parameters(),
              (long long)config.weight_bytes(weight_dtype), DTypeName(weight_dtype));
  std::printf("KV cache bytes per token (%s) %lld\n", std::string(DTypeName(kv_dtype)).c_str(),
              (long long)out["kv_bytes_per_token"].get<int64_t>());
  if (plan) {
    if (plan->budget.kv_cache_fraction) {
      std::printf(
          "KV budget %lld bytes: %g of the memory limit of %lld bytes less %lld bytes of "
          "weights and %lld bytes of activation workspace\n",
          (long long)plan->capacity.budget_bytes, *plan->budget.kv_cache_fraction,
          (long long)plan->budget.memory_limit_bytes, (long long)plan->budget.weight_bytes,
          (long long)plan->budget.workspace_bytes);
    }
    std::printf("%s\n", DescribeKvCapacity(plan->capacity).c_str());
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
