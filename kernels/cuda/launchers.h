// Host entry points of the CUDA kernels, one .cu file each; the CudaBackend calls these on its
// stream. Pointers are device memory; sizes are validated by the caller (the Backend contract).
#ifndef MLKV_KERNELS_CUDA_LAUNCHERS_H_
#define MLKV_KERNELS_CUDA_LAUNCHERS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/attention_plan.h"
#include "kernels/paged_kv.h"

namespace mlkv {
struct RowSampling;  // kernels/backend.h, which only sample_rows.cu needs to see in full
}  // namespace mlkv

namespace mlkv::cuda {

// linear_epilogue.cu, over out[rows][cols]:
// out[r, :] = bias: the starting value of a GEMM with bias (beta = 1).
void LaunchBroadcastRows(const float* bias, int64_t rows, int64_t cols, float* out,
                         cudaStream_t stream);
// out[r, :] += bias: a residual that a GEMM then accumulates onto.
void LaunchAddRows(const float* bias, int64_t rows, int64_t cols, float* out, cudaStream_t stream);
// out[r, :] = gelu(out[r, :] + bias) (bias may be null); exact: 0.5 x (1 + erf(x / sqrt 2)),
// else the tanh approximation.
void LaunchBiasGelu(const float* bias, int64_t rows, int64_t cols, bool exact, float* out,
                    cudaStream_t stream);

// gather.cu: out[t, :] = in[indices[t], :] widened to float32 (embedding lookup and row
// gather); `in` holds elements of `dtype`.
void LaunchGatherRows(const void* in, DType dtype, int64_t cols, const int32_t* indices,
                      int64_t rows, float* out, cudaStream_t stream);

// narrow.cu: out[i] = in[i] rounded to `dtype` (kF16 or kBF16) for i < count.
void LaunchNarrow(const float* in, int64_t count, DType dtype, void* out, cudaStream_t stream);

// argmax.cu: out[r] = argmax of row r, by the rule of Backend::ArgmaxRows.
void LaunchArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out,
                      cudaStream_t stream);

// sample_rows.cu: out[r] = a token drawn from row r by params[r], by the rule of
// Backend::SampleRows. One thread block per row; no host synchronisation and no scratch memory.
void LaunchSampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                      int32_t* out, cudaStream_t stream);

// layernorm.cu
void LaunchLayerNorm(const float* in, const float* gamma, const float* beta, float eps,
                     int64_t rows, int64_t cols, float* out, cudaStream_t stream);

// rotary.cu
void LaunchRotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim,
                  const int32_t* positions, const RotaryView& rotary, cudaStream_t stream);

// kv_cache_write.cu
void LaunchWriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                        const KvCacheView& cache, cudaStream_t stream);

// paged_attention.cu: `workspace` holds plan.workspace_bytes (unused when plan.num_splits == 1).
void LaunchPagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                          const RotaryView& rotary, const AttentionParams& params,
                          const AttentionPlan& plan, void* workspace, float* out,
                          cudaStream_t stream);

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_LAUNCHERS_H_
