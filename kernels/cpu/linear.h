// Dense projections on the CPU through the BLAS (OpenBLAS, OpenMP build).
#ifndef MLKV_KERNELS_CPU_LINEAR_H_
#define MLKV_KERNELS_CPU_LINEAR_H_

#include <cstdint>

#include "kernels/backend.h"

namespace mlkv::cpu {

// Backend::Linear: p = in[rows, k] * weight[n, k]^T + bias[n] (bias may be null), stored,
// passed through GELU or added onto out as `epilogue` says. f16/bf16 weights are widened to
// float32 (exactly) and multiplied with the float32 input, so the result is what a float32
// projection with the rounded weights gives, up to summation order.
void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
            int64_t n, LinearEpilogue epilogue, float* out);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_LINEAR_H_
