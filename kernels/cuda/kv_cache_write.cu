// Stores a step's keys and values ([num_tokens][num_kv_heads][head_dim], float32) into one sharing
// group's paged cache at the batch's slot_mapping, in the layout of kv_layout.h, converting to
// f16 or bf16 (round to nearest even, as common/half.h and PyTorch do) when the cache is. Rows
// whose slot is negative (padding) write nothing.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/kv_layout.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__device__ inline void Store(float* pool, int64_t offset, float value) { pool[offset] = value; }
__device__ inline void Store(__half* pool, int64_t offset, float value) {
  pool[offset] = __float2half_rn(value);
}
__device__ inline void Store(__nv_bfloat16* pool, int64_t offset, float value) {
  pool[offset] = __float2bfloat16_rn(value);
}

// One thread per element of k (and the same element of v): consecutive threads write consecutive
// dims of one token row, so stores are coalesced.
template <typename T>
__global__ void WriteKvCacheKernel(const float* k, const float* v, const int64_t* slot_mapping,
                                   T* k_cache, T* v_cache, int64_t num_kv_heads, int64_t block_size,
                                   int64_t head_dim, int64_t count) {
  const int64_t row_elems = num_kv_heads * head_dim;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < count;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t token = idx / row_elems, within = idx % row_elems;
    const int64_t head = within / head_dim, i = within % head_dim;
    const int64_t slot = slot_mapping[token];
    if (slot < 0) continue;  // a padding row: writes nothing
    const int64_t offset = KvRowOffset(slot / block_size, head, slot % block_size, num_kv_heads,
                                       block_size, head_dim) +
                           i;
    Store(k_cache, offset, k[idx]);
    Store(v_cache, offset, v[idx]);
  }
}

template <typename T>
void Launch(const float* k, const float* v, const StepBatchView& batch, const KvCacheView& cache,
            cudaStream_t stream) {
  const int64_t count = batch.num_tokens * cache.num_kv_heads * cache.head_dim;
  WriteKvCacheKernel<T><<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(
      k, v, batch.slot_mapping, static_cast<T*>(cache.k_cache), static_cast<T*>(cache.v_cache),
      cache.num_kv_heads, cache.block_size, cache.head_dim, count);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace

void LaunchWriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                        const KvCacheView& cache, cudaStream_t stream) {
  if (batch.num_tokens <= 0) return;
  switch (cache.dtype) {
    case DType::kF32:
      return Launch<float>(k, v, batch, cache, stream);
    case DType::kF16:
      return Launch<__half>(k, v, batch, cache, stream);
    case DType::kBF16:
      return Launch<__nv_bfloat16>(k, v, batch, cache, stream);
  }
}

}  // namespace mlkv::cuda
