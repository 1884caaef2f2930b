// Host-side launch planning for the CUDA paged-attention kernel: which shapes it serves, how many
// splits of the context each (row, KV head) gets, and the shared memory and workspace a launch
// needs. Plain C++ so that it is unit-tested on machines without a GPU.
#ifndef MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_
#define MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/dtype.h"

namespace mlkv::cuda {

// Kernel constants shared by the planner and paged_attention.cu.
inline constexpr int kAttentionThreads = 128;  // 4 warps per thread block
inline constexpr int kAttentionTile = 32;      // cached tokens per tile: one per lane of a warp
inline constexpr int kMaxGroupSize = 16;       // query heads per KV head served by one block
inline constexpr int kMaxHeadDim = 256;
inline constexpr int kMaxSplits = 64;
// Splits are not made shorter than this: the merge costs a pass over (d + 2) floats per split.
inline constexpr int kMinSplitTokens = 256;
// Thread blocks per SM the planner aims to have in flight for a decode step.
inline constexpr int kTargetBlocksPerSm = 4;
// Output accumulators per thread (group x head_dim floats over the block's threads): the kernel
// is built for the worst case (16 x 256 / 128 = 32) and for the common one (8: group x head_dim
// up to 1024, e.g. any group of Pythia's head_dim 64), where fewer registers let more blocks
// share an SM.
inline constexpr int kMaxAccumulators = kMaxGroupSize * kMaxHeadDim / kAttentionThreads;
inline constexpr int kSmallAccumulators = 8;

// OK when the kernel serves this attention shape, else INVALID_ARGUMENT saying which limit.
absl::Status CheckAttentionShape(int64_t num_heads, int64_t num_kv_heads, int64_t head_dim);

struct AttentionShape {
  int64_t num_tokens = 0;    // query rows of the step
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_context = 0;   // an upper bound of any row's context (block table width x block size)
  DType kv_dtype = DType::kF32;
  bool pools_aligned = true;  // both pools start on a 16-byte boundary
};

struct AttentionPlan {
  int64_t group = 0;          // query heads per KV head
  bool vectorized = false;    // 16-byte loads of the cache (head_dim a multiple of the vector)
  int64_t smem_stride = 0;    // floats per staged token row in shared memory (bank-conflict free)
  int64_t accumulators = 0;   // kSmallAccumulators or kMaxAccumulators
  int64_t smem_bytes = 0;     // dynamic shared memory per thread block
  int64_t num_splits = 1;     // > 1: partial results go to the workspace and a merge kernel
  int64_t split_tokens = 0;   // context tokens per split, a multiple of kAttentionTile
  int64_t workspace_bytes = 0;
};

// `num_sms`: the device's multiprocessors. `forced_split_tokens` > 0 overrides the split choice.
// The shape must have passed CheckAttentionShape.
AttentionPlan PlanAttention(const AttentionShape& shape, int64_t num_sms,
                            int64_t forced_split_tokens);

// An upper bound of PlanAttention's workspace_bytes over every shape that differs from
// `largest` only by num_tokens in [1, largest.num_tokens] and max_context in
// [1, largest.max_context]: what the backend reserves for all the steps of a server.
int64_t MaxAttentionWorkspace(const AttentionShape& largest, int64_t num_sms,
                              int64_t forced_split_tokens);

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_
