// Elementwise float32 kernels: GELU (exact and tanh), residual add, bias broadcast. Memory-bound
// grid-stride loops; the math is in float32 with CUDA's accurate erff/tanhf (no fast-math).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__global__ void GeluExactKernel(float* x, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  }
}

__global__ void GeluTanhKernel(float* x, int64_t count) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

__global__ void AddKernel(float* x, const float* y, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    x[i] += y[i];
  }
}

__global__ void BroadcastRowsKernel(const float* bias, int64_t cols, int64_t count, float* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = bias[i % cols];
  }
}

}  // namespace

void LaunchGelu(float* x, int64_t count, bool exact, cudaStream_t stream) {
  if (count <= 0) return;
  if (exact) {
    GeluExactKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(x, count);
  } else {
    GeluTanhKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(x, count);
  }
  MLKV_CUDA_CHECK_LAUNCH();
}

void LaunchAdd(float* x, const float* y, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  AddKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(x, y, count);
  MLKV_CUDA_CHECK_LAUNCH();
}

void LaunchBroadcastRows(const float* bias, int64_t rows, int64_t cols, float* out,
                         cudaStream_t stream) {
  const int64_t count = rows * cols;
  if (count <= 0) return;
  BroadcastRowsKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(bias, cols,
                                                                                    count, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
