// Row-wise argmax (greedy sampling on the device): one thread block per row. Each thread scans a
// strided slice keeping its best (value, index), then warps and the block reduce the pairs with
// the rule of Backend::ArgmaxRows, which is a total order on (value, index) pairs, so the result
// does not depend on the order of the reduction.
#include <cmath>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

constexpr int kArgmaxThreads = 256;

struct Best {
  float value;
  int index;  // -1: nothing seen yet
};

// Whether `a` ranks above `b`: any pair above none; a number above NaN; the larger number; the
// lower index among equal numbers; and among NaNs the higher index, so that an all-NaN row
// answers cols - 1 as the host sampler does.
__device__ bool Above(Best a, Best b) {
  if (b.index < 0) return a.index >= 0;
  if (a.index < 0) return false;
  const bool a_nan = isnan(a.value), b_nan = isnan(b.value);
  if (a_nan != b_nan) return b_nan;
  if (a_nan) return a.index > b.index;
  if (a.value != b.value) return a.value > b.value;
  return a.index < b.index;
}

__device__ Best WarpBest(Best v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const Best other{__shfl_xor_sync(0xffffffffu, v.value, offset),
                     __shfl_xor_sync(0xffffffffu, v.index, offset)};
    if (Above(other, v)) v = other;
  }
  return v;
}

__global__ void ArgmaxRowsKernel(const float* in, int64_t cols, int32_t* out) {
  __shared__ Best warp_best[kArgmaxThreads / 32];
  const float* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  Best best{0.0f, -1};
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const Best candidate{row[c], static_cast<int>(c)};
    if (Above(candidate, best)) best = candidate;
  }
  best = WarpBest(best);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_best[warp] = best;
  __syncthreads();
  if (warp == 0) {
    best = lane < kArgmaxThreads / 32 ? warp_best[lane] : Best{0.0f, -1};
    best = WarpBest(best);
    if (lane == 0) out[blockIdx.x] = best.index;
  }
}

}  // namespace

void LaunchArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out,
                      cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  ArgmaxRowsKernel<<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream>>>(in, cols, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
