// LayerNorm in float32: one thread block per row, two passes over the row (the mean, then the
// centred variance, as the CPU reference does) so that rows with a large mean lose no precision
// to E[x^2] - E[x]^2 cancellation. The second and third reads of the row hit L1/L2.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launchers.h"
#include "kernels/cuda/reduce.cuh"

namespace mlkv::cuda {
namespace {

constexpr int kLayerNormThreads = 256;

__global__ void LayerNormKernel(const float* in, const float* gamma, const float* beta, float eps,
                                int64_t cols, float* out) {
  __shared__ float scratch[32];
  const float* x = in + blockIdx.x * cols;
  float* y = out + blockIdx.x * cols;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += x[c];
  const float mean = BlockSum(sum, scratch) / static_cast<float>(cols);
  float sq = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float centred = x[c] - mean;
    sq += centred * centred;
  }
  const float var = BlockSum(sq, scratch) / static_cast<float>(cols);
  const float inv_std = rsqrtf(var + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    y[c] = (x[c] - mean) * inv_std * gamma[c] + beta[c];
  }
}

}  // namespace

void LaunchLayerNorm(const float* in, const float* gamma, const float* beta, float eps,
                     int64_t rows, int64_t cols, float* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  LayerNormKernel<<<static_cast<unsigned>(rows), kLayerNormThreads, 0, stream>>>(in, gamma, beta,
                                                                                 eps, cols, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
