// Sizing the paged KV cache from a memory budget; see kv_capacity.h.
#include "planning/kv_capacity.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace mlkv {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// a * b, or nullopt when the product leaves int64 (block sizes and token counts come from flags,
// so a typo of a few extra digits must be an error, not a wrapped-around budget).
std::optional<int64_t> CheckedMul(int64_t a, int64_t b) {
  int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

std::string BytesProductText(int64_t a, int64_t b) {
  std::optional<int64_t> product = CheckedMul(a, b);
  return product ? absl::StrCat(*product) : absl::StrCat("more than ", kInt64Max);
}

std::string HumanBytes(int64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(bytes, " B") : absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

// Exact bytes for arithmetic, and their size for people: "1288490188 bytes (1.2 GiB)".
std::string BytesText(int64_t bytes) {
  return bytes < 1024 ? absl::StrCat(bytes, " bytes")
                      : absl::StrCat(bytes, " bytes (", HumanBytes(bytes), ")");
}

// The flag that set the budget, for messages that advise raising it.
const char* BudgetFlag(const KvBudget& budget) {
  return budget.kv_cache_bytes ? "--kv-cache-bytes" : "--kv-cache-fraction";
}

// Resolves the budget to bytes. The fraction form takes a share of what the weights and the
// activation workspace leave.
absl::StatusOr<int64_t> BudgetBytes(const KvBudget& budget) {
  if (budget.kv_cache_bytes.has_value() == budget.kv_cache_fraction.has_value()) {
    return Invalid(budget.kv_cache_bytes
                       ? "give only one of --kv-cache-bytes or --kv-cache-fraction, not both"
                       : "the KV cache needs a budget: give --kv-cache-bytes or "
                         "--kv-cache-fraction");
  }
  if (budget.kv_cache_bytes) {
    if (*budget.kv_cache_bytes <= 0) {
      return Invalid(
          absl::StrCat("--kv-cache-bytes: must be positive, got ", *budget.kv_cache_bytes));
    }
    return *budget.kv_cache_bytes;
  }
  const double fraction = *budget.kv_cache_fraction;
  if (!(fraction > 0.0 && fraction <= 1.0)) {  // written so that NaN fails too
    return Invalid(absl::StrCat("--kv-cache-fraction: must be in (0, 1], got ", fraction));
  }
  if (budget.memory_limit_bytes <= 0) {
    return Invalid(
        absl::StrCat("--memory-limit-bytes: must be positive, got ", budget.memory_limit_bytes));
  }
  if (budget.weight_bytes < 0 || budget.workspace_bytes < 0) {
    return Invalid(absl::StrCat("weight and workspace bytes must not be negative, got ",
                                budget.weight_bytes, " and ", budget.workspace_bytes));
  }
  int64_t needed = 0;
  if (__builtin_add_overflow(budget.weight_bytes, budget.workspace_bytes, &needed) ||
      needed > budget.memory_limit_bytes) {
    return Invalid(
        absl::StrCat("--kv-cache-fraction: the weights (", BytesText(budget.weight_bytes),
                     ") and the activation workspace (", BytesText(budget.workspace_bytes),
                     ") need more than the ", BytesText(budget.memory_limit_bytes), " of memory (",
                     budget.memory_limit_source, "), which leaves nothing for the KV cache"));
  }
  const int64_t available = budget.memory_limit_bytes - needed;
  if (fraction == 1.0) return available;  // exact, without a round trip through floating point
  // The product is rounded to long double's mantissa (64 bits on x86), so for budgets beyond
  // 2^53 bytes the share may be off by a byte (by more where long double is only a double); the
  // clamp keeps rounding at the top of the range from exceeding what is available.
  const long double share = std::floor(static_cast<long double>(fraction) * available);
  return std::min<int64_t>(available, static_cast<int64_t>(share));
}

// Weights + workspace + the planned KV pool. Each term is at most the memory limit or the KV
// budget, but a byte-form budget near the top of the range could still push the sum past 64 bits:
// nullopt then.
std::optional<int64_t> TotalBytes(const KvBudget& budget, int64_t kv_bytes) {
  int64_t total = 0;
  if (__builtin_add_overflow(budget.weight_bytes, budget.workspace_bytes, &total) ||
      __builtin_add_overflow(total, kv_bytes, &total)) {
    return std::nullopt;
  }
  return total;
}

}  // namespace

absl::StatusOr<KvCapacity> PlanKvCapacity(const ModelConfig& config, DType kv_dtype,
                                          int64_t block_size, int64_t max_model_len,
                                          const KvBudget& budget) {
  ASSIGN_OR_RETURN(const int64_t budget_bytes, BudgetBytes(budget));
  if (block_size <= 0) {
    return Invalid(absl::StrCat("--block-size: must be positive, got ", block_size));
  }
  if (max_model_len <= 0) {
    return Invalid(absl::StrCat("--max-model-len: must be positive, got ", max_model_len));
  }
  if (max_model_len > config.max_position_embeddings) {
    return Invalid(absl::StrCat("--max-model-len ", max_model_len,
                                " exceeds the model's max_position_embeddings ",
                                config.max_position_embeddings));
  }

  // ModelConfig::kv_bytes_per_token with each product checked: a validated config keeps every
  // factor positive, but their product is not bounded by validation.
  std::optional<int64_t> bytes_per_token = DTypeBytes(kv_dtype);
  for (int64_t factor :
       {int64_t{2}, config.num_key_value_layers, config.num_key_value_heads, config.head_dim}) {
    if (bytes_per_token) bytes_per_token = CheckedMul(*bytes_per_token, factor);
  }
  if (!bytes_per_token || *bytes_per_token <= 0) {
    return Invalid(absl::StrCat(
        "model config: KV bytes per token (2 x ", config.num_key_value_layers, " KV layers x ",
        config.num_key_value_heads, " KV heads x ", config.head_dim, " head_dim x ",
        DTypeBytes(kv_dtype), " bytes) is not a positive 64-bit number"));
  }
  const std::optional<int64_t> block_bytes = CheckedMul(block_size, *bytes_per_token);
  if (!block_bytes) {
    return Invalid(absl::StrCat("--block-size: ", block_size, " tokens x ", *bytes_per_token,
                                " bytes per token overflows a 64-bit byte count"));
  }

  KvCapacity capacity;
  capacity.budget_bytes = budget_bytes;
  capacity.block_size = block_size;
  capacity.block_bytes = *block_bytes;
  capacity.kv_bytes_per_token = *bytes_per_token;
  capacity.max_model_len = max_model_len;
  capacity.num_blocks = budget_bytes / *block_bytes;
  // block_bytes >= block_size, so num_tokens <= budget_bytes: no overflow.
  capacity.num_tokens = capacity.num_blocks * block_size;
  capacity.blocks_per_sequence = max_model_len / block_size + (max_model_len % block_size != 0);

  if (capacity.num_blocks == 0) {
    std::string source = absl::StrCat("the KV budget of ", budget_bytes, " bytes");
    if (budget.kv_cache_fraction) {
      absl::StrAppend(&source, " (", *budget.kv_cache_fraction, " of the ",
                      budget.memory_limit_bytes - budget.weight_bytes - budget.workspace_bytes,
                      " bytes left after ", budget.weight_bytes, " bytes of weights and ",
                      budget.workspace_bytes, " bytes of activation workspace)");
    }
    return Invalid(absl::StrCat(BudgetFlag(budget), ": ", source, " is below one block of ",
                                *block_bytes, " bytes (--block-size ", block_size, " x ",
                                *bytes_per_token, " bytes per token)"));
  }
  if (capacity.num_blocks < capacity.blocks_per_sequence) {
    // The longest sequence the blocks hold. It is below max_model_len (num_blocks is at most
    // blocks_per_sequence - 1) and so below max_position_embeddings; the cap states the rule.
    const int64_t fitting_len = std::min(capacity.num_tokens, config.max_position_embeddings);
    return Invalid(absl::StrCat(
        "one sequence of --max-model-len ", max_model_len, " needs ", capacity.blocks_per_sequence,
        " blocks (", BytesProductText(capacity.blocks_per_sequence, *block_bytes),
        " bytes) but the KV budget of ", budget_bytes, " bytes holds ", capacity.num_blocks,
        " blocks; --max-model-len ", fitting_len, " would fit, or raise ", BudgetFlag(budget)));
  }
  capacity.max_concurrent_sequences = capacity.num_blocks / capacity.blocks_per_sequence;
  return capacity;
}

std::string DescribeKvCapacity(const KvCapacity& c) {
  return absl::StrCat("KV cache: ", c.num_blocks, " blocks of ", c.block_size, " tokens (",
                      c.num_tokens, " tokens, ", HumanBytes(c.num_blocks * c.block_bytes), " of a ",
                      HumanBytes(c.budget_bytes), " budget); up to ", c.max_concurrent_sequences,
                      " sequences of --max-model-len ", c.max_model_len, " at once (",
                      c.blocks_per_sequence, " blocks each); ", c.kv_bytes_per_token,
                      " bytes per token");
}

std::string DescribeMemoryUse(const KvBudget& budget, const KvCapacity& c) {
  const int64_t kv_bytes = c.num_blocks * c.block_bytes;
  std::string line =
      absl::StrCat("memory: weights ", HumanBytes(budget.weight_bytes), " + activation workspace ",
                   HumanBytes(budget.workspace_bytes), " + KV cache ", HumanBytes(kv_bytes));
  if (const std::optional<int64_t> total = TotalBytes(budget, kv_bytes)) {
    absl::StrAppend(&line, " = ", HumanBytes(*total));  // left out when it overflows
  }
  if (budget.memory_limit_bytes > 0) {
    absl::StrAppend(&line, " of ", HumanBytes(budget.memory_limit_bytes), " (",
                    budget.memory_limit_source);
    if (budget.kv_cache_fraction) {
      absl::StrAppend(&line, "; --kv-cache-fraction ", *budget.kv_cache_fraction);
    }
    absl::StrAppend(&line, ")");
  }
  return line;
}

absl::Status CheckMemoryFits(const KvBudget& budget, const KvCapacity& capacity) {
  if (!budget.kv_cache_bytes || budget.memory_limit_bytes <= 0) return absl::OkStatus();
  const int64_t kv_bytes = capacity.num_blocks * capacity.block_bytes;
  const std::optional<int64_t> total = TotalBytes(budget, kv_bytes);
  if (total && *total <= budget.memory_limit_bytes) return absl::OkStatus();
  return Invalid(absl::StrCat(
      "--kv-cache-bytes: the KV cache (", BytesText(kv_bytes), "), the weights (",
      BytesText(budget.weight_bytes), ") and the activation workspace (",
      BytesText(budget.workspace_bytes), ") need more than the ",
      BytesText(budget.memory_limit_bytes), " of memory (", budget.memory_limit_source,
      "); lower --kv-cache-bytes or --max-num-batched-tokens, or use --kv-cache-fraction"));
}

absl::Status CheckWeightsFit(int64_t weight_bytes, DType weight_dtype, int64_t free_bytes,
                             const std::string& device) {
  if (weight_bytes <= free_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("model does not fit: its ", DTypeName(weight_dtype), " weights need ",
                   BytesText(weight_bytes), ", ", device, " has ", BytesText(free_bytes), " free",
                   weight_dtype == DType::kF32 ? " (--weight-dtype f16 or bf16 halves them)" : ""));
}

}  // namespace mlkv
