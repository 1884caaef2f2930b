// Row gather (embedding lookup, and picking the rows that need logits): one thread block per
// output row, threads along the columns, so reads and writes are coalesced. Embedding tables may
// be f16/bf16 and are widened to float32 as they are read.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__device__ float Widen(float x) { return x; }
__device__ float Widen(__half x) { return __half2float(x); }
__device__ float Widen(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__global__ void GatherRowsKernel(const T* in, int64_t cols, const int32_t* indices, float* out) {
  const int64_t row = blockIdx.x;
  const T* src = in + static_cast<int64_t>(indices[row]) * cols;
  float* dst = out + row * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = Widen(src[c]);
}

template <typename T>
void Launch(const void* in, int64_t cols, const int32_t* indices, int64_t rows, float* out,
            cudaStream_t stream) {
  GatherRowsKernel<T><<<static_cast<unsigned>(rows), kElementwiseThreads, 0, stream>>>(
      static_cast<const T*>(in), cols, indices, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace

void LaunchGatherRows(const void* in, DType dtype, int64_t cols, const int32_t* indices,
                      int64_t rows, float* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  switch (dtype) {
    case DType::kF32:
      return Launch<float>(in, cols, indices, rows, out, stream);
    case DType::kF16:
      return Launch<__half>(in, cols, indices, rows, out, stream);
    case DType::kBF16:
      return Launch<__nv_bfloat16>(in, cols, indices, rows, out, stream);
  }
}

}  // namespace mlkv::cuda
