// `mlkv capacity`: what a device's memory buys for each model variant — weights, activation
// workspace, KV bytes per token, KV blocks, concurrent sequences per context length — and the
// decode-step roofline (upper bound on tokens/s from memory bandwidth and FLOP rate). Arithmetic
// only: no model runs.
#include <cstdio>
#include <filesystem>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/model_flags.h"
#include "common/status_macros.h"
#include "engine/model_workspace.h"
#include "nlohmann/json.hpp"
#include "planning/decode_roofline.h"
#include "planning/kv_capacity.h"
#include "tools/mlkv/commands.h"

namespace mlkv::cli {
namespace {

struct Budget {
  std::optional<double> memory_bytes, kv_cache_bytes;
  double utilization = 0.9;
};

// The KV budget of one variant: explicit, or the device's usable memory minus its weights and
// the activation workspace the engine reserves at start-up.
absl::StatusOr<int64_t> KvBudgetBytes(const Budget& b, double weight_bytes, double workspace_bytes,
                                      const std::string& variant) {
  if (b.kv_cache_bytes) return static_cast<int64_t>(*b.kv_cache_bytes);
  const double left = *b.memory_bytes * b.utilization - weight_bytes - workspace_bytes;
  if (left < 1.0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: the weights (%.0f bytes) and the activation workspace (%.0f bytes) do not fit in "
        "--memory-bytes x --memory-utilization",
        variant, weight_bytes, workspace_bytes));
  }
  return static_cast<int64_t>(left);
}

}  // namespace

absl::Status RunCapacity(const Args& args) {
  ASSIGN_OR_RETURN(
      Flags flags,
      Flags::Parse(args,
                   {"config", "memory-bytes", "memory-utilization", "kv-cache-bytes",
                    "weight-dtype", "kv-dtype", "block-size", "context-lens", "bandwidth-gbs",
                    "tflops", "max-batch", "max-num-batched-tokens", "max-num-seqs", "format"},
                   {}, {"config"}));
  if (PrintUsageIfAsked(flags, "mlkv capacity")) return absl::OkStatus();
  ASSIGN_OR_RETURN(bool json, JsonFormatFromFlags(flags));
  if (!flags.Has("config")) return absl::InvalidArgumentError("--config: is required");
  if (flags.Has("memory-bytes") == flags.Has("kv-cache-bytes")) {
    return absl::InvalidArgumentError("give one of --memory-bytes or --kv-cache-bytes");
  }
  Budget budget;
  constexpr double kHuge = 1e18;
  if (flags.Has("memory-bytes")) {
    ASSIGN_OR_RETURN(budget.memory_bytes, flags.Double("memory-bytes", 0, 1, kHuge));
  } else {
    ASSIGN_OR_RETURN(budget.kv_cache_bytes, flags.Double("kv-cache-bytes", 0, 1, kHuge));
  }
  ASSIGN_OR_RETURN(budget.utilization, flags.Double("memory-utilization", 0.9, 0.01, 1.0));
  ASSIGN_OR_RETURN(const DType weight_dtype, DTypeFromFlags(flags, "weight-dtype", DType::kF16));
  ASSIGN_OR_RETURN(const DType kv_dtype, DTypeFromFlags(flags, "kv-dtype", DType::kF16));
  ASSIGN_OR_RETURN(int64_t block_size, flags.Int("block-size", 16, 1, 1024));
  std::vector<int64_t> contexts = {2048};
  if (flags.Has("context-lens")) {
    ASSIGN_OR_RETURN(contexts, flags.IntList("context-lens", 1, 1 << 24));
  }
  ASSIGN_OR_RETURN(int64_t max_batch, flags.Int("max-batch", 256, 1, 1 << 20));
  // The engine's step limits, which size its activation workspace.
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  ASSIGN_OR_RETURN(const int64_t batched_tokens,
                   flags.Int("max-num-batched-tokens", 2048, 1, kInt32Max));
  ASSIGN_OR_RETURN(const int64_t max_seqs, flags.Int("max-num-seqs", 256, 1, kInt32Max));
  const bool roofline = flags.Has("bandwidth-gbs") || flags.Has("tflops");
  DeviceLimits device;
  if (roofline) {
    if (!flags.Has("bandwidth-gbs") || !flags.Has("tflops")) {
      return absl::InvalidArgumentError("the roofline needs both --bandwidth-gbs and --tflops");
    }
    ASSIGN_OR_RETURN(double gbs, flags.Double("bandwidth-gbs", 0, 1e-3, 1e9));
    ASSIGN_OR_RETURN(double tflops, flags.Double("tflops", 0, 1e-6, 1e9));
    device = {gbs * 1e9, tflops * 1e12};
  }

  nlohmann::json rows = nlohmann::json::array();
  for (const std::string& path : flags.Strings("config")) {
    ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromFile(path));
    const std::string variant = std::filesystem::path(path).stem().string();
    const double weight_bytes = static_cast<double>(config.weight_bytes(weight_dtype));
    for (int64_t context : contexts) {
      SchedulerConfig step_limits;
      step_limits.block_size = static_cast<int32_t>(block_size);
      step_limits.max_model_len = static_cast<int32_t>(context);
      step_limits.max_num_batched_tokens = static_cast<int32_t>(batched_tokens);
      step_limits.max_num_seqs = static_cast<int32_t>(max_seqs);
      ASSIGN_OR_RETURN(const int64_t workspace_bytes,
                       WorkspaceBytes(config, LargestStep(step_limits)));
      ASSIGN_OR_RETURN(
          const int64_t kv_budget,
          KvBudgetBytes(budget, weight_bytes, static_cast<double>(workspace_bytes), variant));
      KvBudget b;
      b.kv_cache_bytes = kv_budget;
      ASSIGN_OR_RETURN(KvCapacity capacity,
                       PlanKvCapacity(config, kv_dtype, block_size, context, b));
      nlohmann::json row = {{"variant", variant},
                            {"config", path},
                            {"num_parameters", config.num_parameters()},
                            {"weight_bytes", weight_bytes},
                            {"workspace_bytes", workspace_bytes},
                            {"kv_bytes_per_token", capacity.kv_bytes_per_token},
                            {"kv_budget_bytes", capacity.budget_bytes},
                            {"num_blocks", capacity.num_blocks},
                            {"num_tokens", capacity.num_tokens},
                            {"context_len", context},
                            {"max_concurrent_sequences", capacity.max_concurrent_sequences}};
      if (roofline) {
        const int64_t batch =
            std::max<int64_t>(1, std::min(max_batch, capacity.max_concurrent_sequences));
        const DecodeStepCost cost =
            EstimateDecodeStep(config, weight_dtype, kv_dtype, batch, context, device);
        row["decode_batch"] = batch;
        row["decode_step_bytes"] = cost.weight_bytes + cost.kv_bytes;
        row["decode_step_flops"] = cost.flops;
        row["decode_tokens_per_s_bound"] = cost.tokens_per_s;
        row["decode_bound"] = cost.memory_bound ? "memory" : "compute";
      }
      rows.push_back(row);
    }
  }
  if (json) {
    std::printf("%s\n", nlohmann::json{{"rows", rows}}.dump(2).c_str());
    return absl::OkStatus();
  }
  std::printf("%-22s %8s %10s %12s %10s %8s %10s", "variant", "weights", "KV B/tok", "KV blocks",
              "context", "max seqs", "batch");
  std::printf(roofline ? " %14s %8s\n" : "\n", "bound tok/s", "bound");
  for (const auto& r : rows) {
    std::printf(
        "%-22s %7.2fG %10lld %12lld %10lld %8lld", r["variant"].get<std::string>().c_str(),
        r["weight_bytes"].get<double>() / 1e9, (long long)r["kv_bytes_per_token"].get<int64_t>(),
        (long long)r["num_blocks"].get<int64_t>(), (long long)r["context_len"].get<int64_t>(),
        (long long)r["max_concurrent_sequences"].get<int64_t>());
    if (roofline) {
      std::printf(" %10lld %14.0f %8s\n", (long long)r["decode_batch"].get<int64_t>(),
                  r["decode_tokens_per_s_bound"].get<double>(),
                  r["decode_bound"].get<std::string>().c_str());
    } else {
      std::printf("\n");
    }
  }
  return absl::OkStatus();
}

}  // namespace mlkv::cli
