// float32 -> f16/bf16 (round to nearest even), for the input of a GEMM whose weights are f16/bf16:
// cuBLAS multiplies matching 16-bit operands on the tensor cores, accumulating in float32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__device__ void Narrow(float x, __half* out) { *out = __float2half_rn(x); }
__device__ void Narrow(float x, __nv_bfloat16* out) { *out = __float2bfloat16_rn(x); }

template <typename T>
__global__ void NarrowKernel(const float* in, int64_t count, T* out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    Narrow(in[i], out + i);
  }
}

}  // namespace

void LaunchNarrow(const float* in, int64_t count, DType dtype, void* out, cudaStream_t stream) {
  if (count <= 0) return;
  if (dtype == DType::kF16) {
    NarrowKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(
        in, count, static_cast<__half*>(out));
  } else {
    NarrowKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(
        in, count, static_cast<__nv_bfloat16*>(out));
  }
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
