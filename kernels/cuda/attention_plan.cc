// Paged-attention launch planning; see attention_plan.h and the layout notes in
// paged_attention.cu.
#include "kernels/cuda/attention_plan.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace mlkv::cuda {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

bool ServesTensorCoreHeadDim(int64_t head_dim) {
  return std::find(std::begin(kTensorCoreHeadDims), std::end(kTensorCoreHeadDims), head_dim) !=
         std::end(kTensorCoreHeadDims);
}

AttentionKernel KernelFor(const AttentionShape& shape) {
  return shape.kernel == AttentionKernel::kTensorCore && TensorCoreAttentionServes(shape)
             ? AttentionKernel::kTensorCore
             : AttentionKernel::kSimt;
}

// The most query rows of one sequence a block of `kernel` takes: the tensor-core kernel fills its
// 64 query vectors with whole rows' groups.
int64_t MaxRowsPerBlock(AttentionKernel kernel, int64_t group) {
  return kernel == AttentionKernel::kTensorCore ? std::max<int64_t>(kTensorCoreVectors / group, 1)
                                                : 1;
}

int64_t TileTokens(AttentionKernel kernel) {
  return kernel == AttentionKernel::kTensorCore ? kTensorCoreTile : kAttentionTile;
}

// The splits the planner chooses for `context` tokens when none are forced: only as many as give
// the device kTargetBlocksPerSm thread blocks per SM, and never shorter than kMinSplitTokens, so
// that a long context gets more splits than a short one. `rows_per_block` rows share a block, so
// at least num_tokens / rows_per_block blocks per KV head do work.
int64_t ChosenSplits(const AttentionShape& shape, int64_t rows_per_block, int64_t context,
                     int64_t num_sms) {
  const int64_t blocks =
      std::max<int64_t>(CeilDiv(shape.num_tokens, rows_per_block) * shape.num_kv_heads, 1);
  const int64_t to_fill = CeilDiv(std::max<int64_t>(num_sms, 1) * kTargetBlocksPerSm, blocks);
  return std::clamp<int64_t>(std::min(to_fill, CeilDiv(context, kMinSplitTokens)), 1, kMaxSplits);
}

// The SIMT kernel's staging layout: float4 loads where rows allow, a bank-conflict-free row
// stride, its accumulator count and shared memory.
void PlanSimtLayout(const AttentionShape& shape, AttentionPlan& plan) {
  const int64_t d = shape.head_dim;
  // A 16-byte vector holds 4 floats or 8 f16/bf16; every token row starts at a multiple of d
  // elements, so d a multiple of the vector keeps every load aligned.
  const int64_t vector_elems = shape.kv_dtype == DType::kF32 ? 4 : 8;
  plan.vectorized = shape.pools_aligned && d % vector_elems == 0;
  // Staged rows are read down a column by the 32 lanes of a warp (one token each). With float4
  // reads a quarter warp covers all 32 banks when the row stride is an odd number of float4s;
  // with scalar reads, when it is an odd number of floats.
  if (plan.vectorized) {
    const int64_t quads = d / 4;
    plan.smem_stride = 4 * (quads % 2 == 1 ? quads : quads + 1);
  } else {
    plan.smem_stride = d % 2 == 1 ? d : d + 1;
  }
  const int64_t g = plan.group;
  plan.accumulators =
      g * d <= kAttentionThreads * kSmallAccumulators ? kSmallAccumulators : kMaxAccumulators;
  // Floats: queries [g][d], K and V tiles [tile][stride], probabilities [g][tile], and the
  // running max, sum and rescale factor per head; then one int64 row offset per tile token.
  const int64_t floats = g * d + 2 * kAttentionTile * plan.smem_stride + g * kAttentionTile + 3 * g;
  plan.smem_bytes = RoundUp(floats * 4, 8) + kAttentionTile * 8;
}

// Per split, row and query head: the normalised partial output (d floats), its max and sum.
int64_t SplitWorkspaceBytes(const AttentionShape& shape, int64_t num_splits) {
  return num_splits > 1 ? num_splits * shape.num_tokens * shape.num_heads * (shape.head_dim + 2) * 4
                        : 0;
}

}  // namespace

absl::Status CheckAttentionShape(int64_t num_heads, int64_t num_kv_heads, int64_t head_dim) {
  if (num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA attention: ", num_heads,
                                                   " query heads do not divide into ", num_kv_heads,
                                                   " KV heads"));
  }
  if (num_heads / num_kv_heads > kMaxGroupSize) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA attention: ", num_heads / num_kv_heads,
                                                   " query heads per KV head; at most ",
                                                   kMaxGroupSize, " are supported"));
  }
  if (head_dim <= 0 || head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA attention: head_dim ", head_dim, " outside 1..", kMaxHeadDim));
  }
  return absl::OkStatus();
}

bool TensorCoreAttentionServes(const AttentionShape& shape) {
  return (shape.kv_dtype == DType::kF16 || shape.kv_dtype == DType::kBF16) && shape.pools_aligned &&
         ServesTensorCoreHeadDim(shape.head_dim);
}

AttentionPlan PlanAttention(const AttentionShape& shape, int64_t num_sms,
                            int64_t forced_split_tokens) {
  AttentionPlan plan;
  plan.kernel = KernelFor(shape);
  plan.group = shape.num_heads / shape.num_kv_heads;
  plan.tile_tokens = TileTokens(plan.kernel);
  if (plan.kernel == AttentionKernel::kTensorCore) {
    plan.vectorized = true;
    plan.smem_stride = shape.head_dim + 8;
    plan.smem_bytes = TensorCoreSmemBytes(shape.head_dim);
    // A decode step has one row per sequence: its blocks serve one row's group.
    const bool decode = shape.num_seqs > 0 && shape.num_seqs == shape.num_tokens;
    plan.rows_per_block = decode ? 1 : MaxRowsPerBlock(plan.kernel, plan.group);
  } else {
    PlanSimtLayout(shape, plan);
  }

  // Every run holds at least one row; a sequence's runs are at most its rows / rows_per_block + 1.
  plan.row_blocks = shape.num_tokens;
  if (plan.rows_per_block > 1 && shape.num_seqs > 0) {
    plan.row_blocks =
        std::min(plan.row_blocks, shape.num_tokens / plan.rows_per_block + shape.num_seqs);
  }

  const int64_t tile = plan.tile_tokens;
  const int64_t context = std::max<int64_t>(shape.max_context, 1);
  int64_t split_tokens;
  if (forced_split_tokens > 0) {
    split_tokens = RoundUp(forced_split_tokens, tile);
  } else {
    const int64_t splits = ChosenSplits(shape, plan.rows_per_block, context, num_sms);
    split_tokens = RoundUp(CeilDiv(context, splits), tile);
  }
  // Cap the count (and so the workspace) by lengthening splits.
  split_tokens = std::max(split_tokens, RoundUp(CeilDiv(context, kMaxSplits), tile));
  plan.num_splits = CeilDiv(context, split_tokens);
  plan.split_tokens = split_tokens;
  plan.workspace_bytes = SplitWorkspaceBytes(shape, plan.num_splits);
  return plan;
}

int64_t MaxAttentionWorkspace(const AttentionShape& largest, int64_t num_sms,
                              int64_t forced_split_tokens) {
  // For a context c <= C, PlanAttention makes at most `splits` splits: its split_tokens is at
  // least c / splits (then rounded up and perhaps lengthened by the cap), where splits, chosen
  // or forced, grows with c, so C's bounds every shorter context's.
  // Fewer working blocks mean more chosen splits, so the most rows a block can take (prompt
  // chunks) bounds a decode step's plan too.
  const int64_t context = std::max<int64_t>(largest.max_context, 1);
  const AttentionKernel kernel = KernelFor(largest);
  const int64_t rows_per_block = MaxRowsPerBlock(kernel, largest.num_heads / largest.num_kv_heads);
  int64_t most = 0;
  AttentionShape shape = largest;
  for (shape.num_tokens = 1; shape.num_tokens <= largest.num_tokens; ++shape.num_tokens) {
    const int64_t splits =
        forced_split_tokens > 0
            ? std::min<int64_t>(CeilDiv(context, RoundUp(forced_split_tokens, TileTokens(kernel))),
                                kMaxSplits)
            : ChosenSplits(shape, rows_per_block, context, num_sms);
    most = std::max(most, SplitWorkspaceBytes(shape, splits));
  }
  return most;
}

}  // namespace mlkv::cuda
