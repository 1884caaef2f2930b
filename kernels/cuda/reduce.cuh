// Warp and thread-block sums for the per-row kernels (layernorm).
#ifndef MLKV_KERNELS_CUDA_REDUCE_CUH_
#define MLKV_KERNELS_CUDA_REDUCE_CUH_

namespace mlkv::cuda {

__device__ inline float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ inline float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// The sum of `v` over the thread block, returned to every thread. blockDim.x must be a multiple
// of 32 (at most 1024); `scratch` holds 32 floats. Ends with a barrier so that scratch can be
// reused by the next call.
__device__ inline float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < warps ? scratch[lane] : 0.0f;
  total = WarpSum(total);
  __syncthreads();
  return total;
}

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_REDUCE_CUH_
