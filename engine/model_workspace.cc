// The workspace's buffer list and its sizes; see model_workspace.h.
#include "engine/model_workspace.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "kernels/backend.h"

namespace mlkv {
namespace {

// What a buffer's length grows with.
enum class Dim { kTokens, kSeqs, kTableEntries };

const char* DimName(Dim dim) {
  switch (dim) {
    case Dim::kTokens:
      return "tokens";
    case Dim::kSeqs:
      return "sequences";
    case Dim::kTableEntries:
      return "block-table entries";
  }
  return "?";
}

// One buffer: units x elements_per_unit + extra_elements elements of element_bytes each.
struct BufferSpec {
  WorkspaceBuffer buffer;
  const char* name;
  Dim dim;
  int64_t elements_per_unit;
  int64_t extra_elements;  // query_start's closing offset
  int64_t element_bytes;
};

// The one description of the workspace (the shapes are drawn in model_workspace.h): an entry
// per WorkspaceBuffer, in any order (model_workspace_test checks that none is left without bytes).
std::array<BufferSpec, kNumWorkspaceBuffers> Layout(const ModelConfig& c) {
  using enum WorkspaceBuffer;
  const int64_t H = c.hidden_size, q = c.num_attention_heads * c.head_dim;
  const int64_t kv = c.num_key_value_heads * c.head_dim;
  return {{
      {kHidden, "hidden", Dim::kTokens, H, 0, 4},
      {kNormed, "normed", Dim::kTokens, H, 0, 4},
      {kQuery, "query", Dim::kTokens, q, 0, 4},
      {kKey, "key", Dim::kTokens, kv, 0, 4},
      {kValue, "value", Dim::kTokens, kv, 0, 4},
      {kAttention, "attention", Dim::kTokens, H, 0, 4},
      {kMlp, "mlp", Dim::kTokens, c.intermediate_size, 0, 4},
      {kLogitsHidden, "logits_hidden", Dim::kTokens, H, 0, 4},
      {kLogits, "logits", Dim::kTokens, c.vocab_size, 0, 4},
      {kTokenIds, "token_ids", Dim::kTokens, 1, 0, 4},
      {kPositions, "positions", Dim::kTokens, 1, 0, 4},
      {kSlotMapping, "slot_mapping", Dim::kTokens, 1, 0, 8},
      {kLogitsRows, "logits_rows", Dim::kTokens, 1, 0, 4},
      {kOutputTokens, "output_tokens", Dim::kTokens, 1, 0, 4},
      {kSampleParams, "sample_params", Dim::kTokens, 1, 0, sizeof(RowSampling)},
      {kQueryStart, "query_start", Dim::kSeqs, 1, 1, 4},
      {kContextLens, "context_lens", Dim::kSeqs, 1, 0, 4},
      {kBlockTables, "block_tables", Dim::kTableEntries, 1, 0, 4},
  }};
}

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("activation workspace: ", message));
}

}  // namespace

WorkspaceLimits LargestStep(const SchedulerConfig& config) {
  const int64_t max_model_len = config.max_model_len, block_size = config.block_size;
  // No sequence computes more than max_model_len tokens in a step, which bounds a token budget
  // set higher than the sequences can use.
  return {std::min<int64_t>(config.max_num_batched_tokens, config.max_num_seqs * max_model_len),
          config.max_num_seqs, (max_model_len + block_size - 1) / block_size};
}

OpLimits LargestStepOps(const ModelConfig& config, DType weight_dtype, DType kv_dtype,
                        const SchedulerConfig& scheduler) {
  const WorkspaceLimits step = LargestStep(scheduler);
  OpLimits ops;
  ops.max_rows = step.max_num_tokens;
  // The projections' inputs: the hidden state (query, key, value, fc_in, LM head), the attention
  // output (dense) and the MLP's intermediate row (fc_out).
  ops.max_linear_k = std::max(
      {config.hidden_size, config.num_attention_heads * config.head_dim, config.intermediate_size});
  ops.weight_dtype = weight_dtype;
  ops.num_heads = config.num_attention_heads;
  ops.num_kv_heads = config.num_key_value_heads;
  ops.head_dim = config.head_dim;
  ops.max_context = step.max_blocks_per_seq * scheduler.block_size;
  ops.kv_dtype = kv_dtype;
  return ops;
}

absl::StatusOr<std::array<int64_t, kNumWorkspaceBuffers>> WorkspaceBufferBytes(
    const ModelConfig& config, const WorkspaceLimits& limits) {
  const std::pair<const char*, int64_t> named_limits[] = {
      {"max_num_tokens", limits.max_num_tokens},
      {"max_num_seqs", limits.max_num_seqs},
      {"max_blocks_per_seq", limits.max_blocks_per_seq}};
  for (const auto& [name, value] : named_limits) {
    if (value <= 0) return Invalid(absl::StrCat(name, " must be positive, got ", value));
  }
  int64_t table_entries = 0;
  if (__builtin_mul_overflow(limits.max_num_seqs, limits.max_blocks_per_seq, &table_entries)) {
    return Invalid(absl::StrCat(limits.max_num_seqs, " sequences x ", limits.max_blocks_per_seq,
                                " blocks per sequence overflows 64 bits"));
  }
  std::array<int64_t, kNumWorkspaceBuffers> bytes{};
  for (const BufferSpec& spec : Layout(config)) {
    const int64_t units = spec.dim == Dim::kTokens ? limits.max_num_tokens
                          : spec.dim == Dim::kSeqs ? limits.max_num_seqs
                                                   : table_entries;
    int64_t elements = 0, size = 0;
    if (__builtin_mul_overflow(units, spec.elements_per_unit, &elements) ||
        __builtin_add_overflow(elements, spec.extra_elements, &elements) ||
        __builtin_mul_overflow(elements, spec.element_bytes, &size)) {
      return Invalid(absl::StrCat("the ", spec.name, " buffer for ", units, " ", DimName(spec.dim),
                                  " overflows a 64-bit byte count"));
    }
    bytes[static_cast<size_t>(spec.buffer)] = size;
  }
  return bytes;
}

absl::StatusOr<int64_t> WorkspaceBytes(const ModelConfig& config, const WorkspaceLimits& limits) {
  ASSIGN_OR_RETURN(const auto buffers, WorkspaceBufferBytes(config, limits));
  int64_t total = 0;
  for (int64_t bytes : buffers) {
    if (__builtin_add_overflow(total, bytes, &total)) {
      return Invalid("the total overflows a 64-bit byte count");
    }
  }
  return total;
}

}  // namespace mlkv
