// The rule of Backend::ArgmaxRows as a thread-block reduction, shared by ArgmaxRows (argmax.cu)
// and SampleRows (sample_rows.cu), whose greedy rows and rows without a finite maximum answer the
// same token. The rule is a total order on (value, index) pairs, so the result does not depend on
// the order of the reduction.
#ifndef MLKV_KERNELS_CUDA_ARGMAX_CUH_
#define MLKV_KERNELS_CUDA_ARGMAX_CUH_

#include <cmath>
#include <cstdint>

namespace mlkv::cuda {

// An element of a row, or none (index -1). Plain data, so that it can live in shared memory.
struct IndexedValue {
  float value;
  int index;
};

__device__ inline IndexedValue NoValue() { return {0.0f, -1}; }

// Whether `a` ranks above `b`: any element above none; a number above NaN; the larger number; the
// lower index among equal numbers (-0 == +0); and among NaNs the higher index, so that an all-NaN
// row answers cols - 1 as the host sampler does.
__device__ inline bool RanksAbove(IndexedValue a, IndexedValue b) {
  if (b.index < 0) return a.index >= 0;
  if (a.index < 0) return false;
  const bool a_nan = isnan(a.value), b_nan = isnan(b.value);
  if (a_nan != b_nan) return b_nan;
  if (a_nan) return a.index > b.index;
  if (a.value != b.value) return a.value > b.value;
  return a.index < b.index;
}

// Folds row element `index` into a thread's running best.
__device__ inline IndexedValue Consider(IndexedValue best, float value, int64_t index) {
  const IndexedValue candidate{value, static_cast<int>(index)};
  return RanksAbove(candidate, best) ? candidate : best;
}

__device__ inline IndexedValue WarpArgmax(IndexedValue v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const IndexedValue other{__shfl_xor_sync(0xffffffffu, v.value, offset),
                             __shfl_xor_sync(0xffffffffu, v.index, offset)};
    if (RanksAbove(other, v)) v = other;
  }
  return v;
}

// One entry per warp of the block.
struct ArgmaxScratch {
  IndexedValue warp_best[32];
};

// The highest-ranked of the threads' `v` over the thread block, returned to every thread. Every
// thread must call it; blockDim.x must be a multiple of 32 (at most 1024). Ends with a barrier so
// that scratch can be reused by the next call.
__device__ inline IndexedValue BlockArgmax(IndexedValue v, ArgmaxScratch& scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = WarpArgmax(v);
  if (lane == 0) scratch.warp_best[warp] = v;
  __syncthreads();
  // Every warp reduces the warps' results, so that all threads have the answer without another
  // round through shared memory.
  v = WarpArgmax(lane < warps ? scratch.warp_best[lane] : NoValue());
  __syncthreads();
  return v;
}

}  // namespace mlkv::cuda

#endif  // MLKV_KERNELS_CUDA_ARGMAX_CUH_
