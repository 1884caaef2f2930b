// LaunchPagedAttention: the plan's kernel (SIMT or tensor cores) over the grid (run of rows, KV
// head, split), then, when the context was split, the merge of the splits' partial results:
// out = sum_s w_s o_s / sum_s w_s with w_s = l_s exp(m_s - max_s m_s).
#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_args.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/reduce.cuh"

namespace mlkv::cuda {
namespace {

constexpr int kMergeThreads = 128;

// out[row][head] from the splits' partial results; grid (row, head).
__global__ void __launch_bounds__(kMergeThreads)
    MergeSplitsKernel(const float* partial_out, const float* partial_ml, int64_t num_splits,
                      int64_t num_tokens, int64_t num_heads, int64_t head_dim, float* out) {
  __shared__ float weight[kMaxSplits];
  __shared__ float total_shared;
  const int64_t rh = blockIdx.x * num_heads + blockIdx.y;
  const int64_t plane = num_tokens * num_heads;
  if (threadIdx.x < 32) {
    // Split 0 always holds token 0, so the maximum is finite.
    float m = -INFINITY;
    for (int64_t s = threadIdx.x; s < num_splits; s += 32) {
      m = fmaxf(m, partial_ml[2 * (s * plane + rh)]);
    }
    m = WarpMax(m);
    float total = 0.0f;
    for (int64_t s = threadIdx.x; s < num_splits; s += 32) {
      const float* ml = partial_ml + 2 * (s * plane + rh);
      weight[s] = ml[1] * expf(ml[0] - m);  // an empty split: 0 * exp(-inf) = 0
      total += weight[s];
    }
    total = WarpSum(total);
    if (threadIdx.x == 0) total_shared = total;
  }
  __syncthreads();
  const float inv = 1.0f / total_shared;
  for (int64_t i = threadIdx.x; i < head_dim; i += blockDim.x) {
    float sum = 0.0f;
    for (int64_t s = 0; s < num_splits; ++s) {
      sum += weight[s] * partial_out[(s * plane + rh) * head_dim + i];
    }
    out[rh * head_dim + i] = sum * inv;
  }
}

}  // namespace

void LaunchPagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                          const RotaryView& rotary, const AttentionParams& params,
                          const AttentionPlan& plan, void* workspace, float* out,
                          cudaStream_t stream) {
  if (batch.num_tokens <= 0) return;
  AttentionArgs args{};
  args.q = q;
  args.out = out;
  args.k_cache = cache.k_cache;
  args.v_cache = cache.v_cache;
  args.positions = batch.positions;
  args.query_start = batch.query_start;
  args.block_tables = batch.block_tables;
  args.num_tokens = batch.num_tokens;
  args.num_seqs = batch.num_seqs;
  args.max_blocks_per_seq = batch.max_blocks_per_seq;
  args.num_heads = params.num_heads;
  args.num_kv_heads = cache.num_kv_heads;
  args.head_dim = cache.head_dim;
  args.block_size = cache.block_size;
  args.group = plan.group;
  args.scale = params.scale;
  args.cos_sin = rotary.cos_sin;
  args.rotary_dims = rotary.rotary_dims;
  args.rotate_keys = params.rotate_keys_on_read && rotary.rotary_dims > 0;
  args.rows_per_block = plan.rows_per_block;
  args.smem_stride = plan.smem_stride;
  if (plan.kernel == AttentionKernel::kSimt) {
    args.row_offsets_byte =
        plan.smem_bytes - kAttentionTile * static_cast<int64_t>(sizeof(int64_t));
  }
  args.split_tokens = plan.split_tokens;
  args.num_splits = plan.num_splits;
  if (plan.num_splits > 1) {
    args.partial_out = static_cast<float*>(workspace);
    args.partial_ml =
        args.partial_out + plan.num_splits * batch.num_tokens * params.num_heads * cache.head_dim;
  }
  if (plan.kernel == AttentionKernel::kTensorCore) {
    LaunchTensorCoreAttention(args, plan, cache.dtype, stream);
  } else {
    LaunchSimtAttention(args, plan, cache.dtype, stream);
  }
  if (plan.num_splits > 1) {
    const dim3 grid(static_cast<unsigned>(batch.num_tokens),
                    static_cast<unsigned>(params.num_heads));
    MergeSplitsKernel<<<grid, kMergeThreads, 0, stream>>>(args.partial_out, args.partial_ml,
                                                          plan.num_splits, batch.num_tokens,
                                                          params.num_heads, cache.head_dim, out);
    MLKV_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace mlkv::cuda
