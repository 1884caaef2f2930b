// What the two paged-attention kernels (paged_attention.cu: SIMT; paged_attention_mma.cu: tensor
// cores) share: their arguments, the row-to-sequence lookup, and their launchers, which
// attention_launch.cu chooses between by the plan and follows with the split merge.
#ifndef MLKV_KERNELS_CUDA_ATTENTION_ARGS_CUH_
#define MLKV_KERNELS_CUDA_ATTENTION_ARGS_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_plan.h"
#include "kernels/cuda/cuda_check.h"

namespace mlkv::cuda {

struct AttentionArgs {
  const float* q;
  float* out;
  const void* k_cache;
  const void* v_cache;
  const int32_t* positions;
  const int32_t* query_start;
  const int32_t* block_tables;
  int64_t num_tokens, num_seqs, max_blocks_per_seq;
  int64_t num_heads, num_kv_heads, head_dim, block_size, group;
  float scale;
  const float* cos_sin;
  int64_t rotary_dims;
  bool rotate_keys;
  int64_t rows_per_block;                 // AttentionPlan::rows_per_block
  int64_t smem_stride, row_offsets_byte;  // SIMT: layout of the dynamic shared memory
  int64_t split_tokens, num_splits;
  // When num_splits > 1 each split writes its normalised partial output and, per (row, head), its
  // max score and sum of exp(score - max), which the merge kernel combines.
  float* partial_out;  // [split][row][head][d]
  float* partial_ml;   // [split][row][head][2]: max, sum
};

// The sequence that owns `row`: the last s with query_start[s] <= row.
__device__ inline int64_t SequenceOfRow(const int32_t* query_start, int64_t num_seqs, int64_t row) {
  int64_t lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (query_start[mid] <= row) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Dynamic shared memory above 48 KiB must be opted into per kernel.
template <typename Kernel>
void AllowSharedMemory(Kernel kernel, int64_t smem_bytes) {
  constexpr int64_t kDefaultSmem = 48 * 1024;
  if (smem_bytes > kDefaultSmem) {
    MLKV_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem_bytes)));
  }
}

// One launch of each kernel over the grid (plan.row_blocks runs of rows, KV head, split), the
// cache holding `dtype`; the tensor-core one only for plans that chose it.
void LaunchSimtAttention(const AttentionArgs& args, const AttentionPlan& plan, DType dtype,
                         cudaStream_t stream);
void LaunchTensorCoreAttention(const AttentionArgs& args, const AttentionPlan& plan, DType dtype,
                               cudaStream_t stream);

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_ATTENTION_ARGS_CUH_
