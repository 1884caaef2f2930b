// Dense projections on the CPU through the BLAS (OpenBLAS, OpenMP build).
#ifndef MLKV_KERNELS_CPU_LINEAR_H_
#define MLKV_KERNELS_CPU_LINEAR_H_

#include <cstdint>

namespace mlkv::cpu {

// out[rows, n] = in[rows, k] * weight[n, k]^T + bias[n]; bias may be null.
void Linear(const float* in, int64_t rows, int64_t k, const float* weight, const float* bias,
            int64_t n, float* out);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_LINEAR_H_
