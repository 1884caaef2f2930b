// Row gather (embedding lookup, and picking the rows that need logits): one thread block per
// output row, threads along the columns, so reads and writes are coalesced.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__global__ void GatherRowsKernel(const float* in, int64_t cols, const int32_t* indices,
                                 float* out) {
  const int64_t row = blockIdx.x;
  const float* src = in + static_cast<int64_t>(indices[row]) * cols;
  float* dst = out + row * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c];
}

}  // namespace

void LaunchGatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows,
                      float* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  GatherRowsKernel<<<static_cast<unsigned>(rows), kElementwiseThreads, 0, stream>>>(in, cols,
                                                                                   indices, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
