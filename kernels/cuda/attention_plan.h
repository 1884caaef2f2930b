// Host-side launch planning for the CUDA paged-attention kernels: which shapes they serve, which
// kernel serves a step, how many splits of the context each thread block gets, and the shared
// memory and workspace a launch needs. Plain C++ so that it is unit-tested on machines without a
// GPU.
#ifndef MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_
#define MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "common/dtype.h"

namespace mlkv::cuda {

// The two attention kernels. kSimt (paged_attention.cu) serves every shape CheckAttentionShape
// accepts, with float32 arithmetic on staged float32 tiles. kTensorCore (paged_attention_mma.cu)
// computes q.k and p.v with mma.sync on f16/bf16 tiles (float32 sums), as FlashAttention-2 does,
// and serves f16/bf16 caches of the head dims in kTensorCoreHeadDims; it rounds the scaled queries
// and the softmax weights to the cache's dtype.
enum class AttentionKernel { kSimt, kTensorCore };

// SIMT kernel constants shared by the planner and paged_attention.cu.
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

// Tensor-core kernel constants shared by the planner and paged_attention_mma.cu.
inline constexpr int kTensorCoreThreads = 128;  // 4 warps
inline constexpr int kTensorCoreVectors = 64;   // query vectors per block at most: 16 per warp
inline constexpr int kTensorCoreTile = 64;      // cached tokens staged per iteration
// Multiples of the mma's k (16) up to 128, where a warp's output accumulators still fit in
// registers; each is a separate instantiation of the kernel.
inline constexpr int64_t kTensorCoreHeadDims[] = {64, 80, 96, 128};

// OK when the kernels serve this attention shape, else INVALID_ARGUMENT saying which limit.
absl::Status CheckAttentionShape(int64_t num_heads, int64_t num_kv_heads, int64_t head_dim);

struct AttentionShape {
  int64_t num_tokens = 0;  // query rows of the step
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_context = 0;  // an upper bound of any row's context (block table width x block size)
  DType kv_dtype = DType::kF32;
  bool pools_aligned = true;  // both pools start on a 16-byte boundary
  // Sequences of the step; equal to num_tokens when every row is a decode row. 0 (unknown) plans
  // as for prompt chunks.
  int64_t num_seqs = 0;
  AttentionKernel kernel = AttentionKernel::kSimt;  // the kernel asked for
};

// Whether the tensor-core kernel serves `shape` (its kv_dtype, head_dim and alignment).
bool TensorCoreAttentionServes(const AttentionShape& shape);

// Dynamic shared memory of a tensor-core block: queries, keys and values as [64][head_dim + 8]
// 16-bit tiles (8 elements of padding make the mma operand loads bank-conflict free), then each
// query vector's causal limit (int) and each warp row's max and sum (2 floats).
inline constexpr int64_t TensorCoreSmemBytes(int64_t head_dim) {
  return 3 * kTensorCoreVectors * (head_dim + 8) * 2 + kTensorCoreVectors * 4 +
         (kTensorCoreThreads / 32) * 16 * 2 * 4;
}

struct AttentionPlan {
  // The kernel that runs: the one asked for when it serves the shape, else kSimt.
  AttentionKernel kernel = AttentionKernel::kSimt;
  int64_t group = 0;  // query heads per KV head
  // Query rows of one sequence per thread block: 1 for the SIMT kernel and for the tensor-core
  // kernel's decode steps (its 4 warps then split each tile's tokens); kTensorCoreVectors / group
  // for its prompt chunks (each warp takes 16 of the rows' query vectors).
  int64_t rows_per_block = 1;
  // Thread blocks along the grid's first dimension: one per row when rows_per_block is 1, else at
  // least the step's runs of rows_per_block rows (sequence by sequence, ceil(rows /
  // rows_per_block) each): num_tokens / rows_per_block + num_seqs, or num_tokens if less.
  int64_t row_blocks = 0;
  int64_t tile_tokens = kAttentionTile;  // cached tokens per iteration; splits are multiples
  bool vectorized = false;  // 16-byte loads of the cache (head_dim a multiple of the vector)
  // SIMT: floats per staged token row in shared memory (bank-conflict free); tensor cores: 16-bit
  // elements (head_dim + 8).
  int64_t smem_stride = 0;
  int64_t accumulators = 0;  // SIMT only: kSmallAccumulators or kMaxAccumulators
  int64_t smem_bytes = 0;    // dynamic shared memory per thread block
  int64_t num_splits = 1;    // > 1: partial results go to the workspace and a merge kernel
  int64_t split_tokens = 0;  // context tokens per split, a multiple of tile_tokens
  int64_t workspace_bytes = 0;
};

// `num_sms`: the device's multiprocessors. `forced_split_tokens` > 0 overrides the split choice.
// The shape must have passed CheckAttentionShape.
AttentionPlan PlanAttention(const AttentionShape& shape, int64_t num_sms,
                            int64_t forced_split_tokens);

// An upper bound of PlanAttention's workspace_bytes over every shape that differs from
// `largest` only by num_tokens in [1, largest.num_tokens], num_seqs and max_context in
// [1, largest.max_context]: what the backend reserves for all the steps of a server.
int64_t MaxAttentionWorkspace(const AttentionShape& largest, int64_t num_sms,
                              int64_t forced_split_tokens);

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_ATTENTION_PLAN_H_
