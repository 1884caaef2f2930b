// NeoX rotary embedding in place: one thread per (row, head, rotated pair). For i < r/2 and
// j = i + r/2, (x_i, x_j) -> (x_i cos - x_j sin, x_j cos + x_i sin), cos and sin read from the
// model's table at the row's position.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/grid.h"
#include "kernels/cuda/launchers.h"

namespace mlkv::cuda {
namespace {

__global__ void RotaryKernel(float* x, int64_t num_heads, int64_t head_dim,
                             const int32_t* positions, const float* cos_sin, int64_t rotary_dims,
                             int64_t count) {
  const int64_t half = rotary_dims / 2;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < count;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx % half, head = idx / half;  // head counts over rows x num_heads
    const int64_t row = head / num_heads;
    const float* cs = cos_sin + static_cast<int64_t>(positions[row]) * rotary_dims + 2 * i;
    float* v = x + head * head_dim;
    const float a = v[i], b = v[i + half];
    v[i] = a * cs[0] - b * cs[1];
    v[i + half] = b * cs[0] + a * cs[1];
  }
}

}  // namespace

void LaunchRotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim,
                  const int32_t* positions, const RotaryView& rotary, cudaStream_t stream) {
  const int64_t count = rows * num_heads * (rotary.rotary_dims / 2);
  if (count <= 0) return;
  RotaryKernel<<<ElementwiseBlocks(count), kElementwiseThreads, 0, stream>>>(
      x, num_heads, head_dim, positions, rotary.cos_sin, rotary.rotary_dims, count);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
