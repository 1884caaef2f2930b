// The elementwise halves of Backend::Linear around the cuBLAS GEMM: the bias placed in the output
// before a GEMM that accumulates onto it (beta = 1), or added onto a residual the GEMM then adds
// to, or added together with GELU after a GEMM that stores (beta = 0). Memory-bound grid-stride
// loops over rows x cols; the math is in float32 with CUDA's accurate erff/tanhf (no fast-math).
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

struct StoreBias {
  __device__ float operator()(float, float bias) const { return bias; }
};
struct AddBias {
  __device__ float operator()(float out, float bias) const { return out + bias; }
};
struct BiasGeluExact {
  __device__ float operator()(float out, float bias) const {
    const float v = out + bias;
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  }
};
struct BiasGeluTanh {
  __device__ float operator()(float out, float bias) const {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    const float v = out + bias;
    return 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
};

// out[i] = op(out[i], bias[i % cols]), with a bias of 0 where `bias` is null.
template <typename Op>
__global__ void RowBiasKernel(const float* bias, int64_t cols, int64_t count, float* out) {
  const Op op;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    out[i] = op(out[i], bias != nullptr ? bias[i % cols] : 0.0f);
  }
}

template <typename Op>
void LaunchRowBias(const float* bias, int64_t rows, int64_t cols, float* out, cudaStream_t stream) {
  const int64_t count = rows * cols;
  if (count <= 0) return;
  RowBiasKernel<Op>
      <<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(bias, cols, count, out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace

void LaunchBroadcastRows(const float* bias, int64_t rows, int64_t cols, float* out,
                         cudaStream_t stream) {
  LaunchRowBias<StoreBias>(bias, rows, cols, out, stream);
}

void LaunchAddRows(const float* bias, int64_t rows, int64_t cols, float* out, cudaStream_t stream) {
  LaunchRowBias<AddBias>(bias, rows, cols, out, stream);
}

void LaunchBiasGelu(const float* bias, int64_t rows, int64_t cols, bool exact, float* out,
                    cudaStream_t stream) {
  if (exact) {
    LaunchRowBias<BiasGeluExact>(bias, rows, cols, out, stream);
  } else {
    LaunchRowBias<BiasGeluTanh>(bias, rows, cols, out, stream);
  }
}

}  // namespace mlkv::cuda
