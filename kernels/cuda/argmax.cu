// Row-wise argmax (greedy sampling on the device): one thread block per row. Each thread scans a
// strided slice keeping its best element, then the block reduces them by the rule of
// Backend::ArgmaxRows (argmax.cuh).
#include "kernels/cuda/argmax.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

constexpr int kArgmaxThreads = 256;

__global__ void ArgmaxRowsKernel(const float* in, int64_t cols, int32_t* out) {
  __shared__ ArgmaxScratch scratch;
  const float* row = in + static_cast<int64_t>(blockIdx.x) * cols;
  IndexedValue best = NoValue();
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) best = Consider(best, row[c], c);
  best = BlockArgmax(best, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = best.index;
}

}  // namespace

void LaunchArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out,
                      cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  ArgmaxRowsKernel<<<static_cast<unsigned>(rows), kArgmaxThreads, 0, stream>>>(in, cols, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
