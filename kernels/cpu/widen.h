// Widening f16/bf16 arrays (KV cache blocks, weight panels, embedding rows) to float32 for the
// CPU kernels, in loops the compiler vectorises.
#ifndef MLKV_KERNELS_CPU_WIDEN_H_
#define MLKV_KERNELS_CPU_WIDEN_H_

#include <cstdint>
#include <cstring>

#include "common/dtype.h"
#include "common/half.h"

namespace mlkv::cpu {

// dst[i] = src[i] as float32 for i < count; src holds elements of `dtype`.
inline void WidenToFloat(const void* src, DType dtype, int64_t count, float* dst) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, sizeof(float) * count);
    return;
  }
  const uint16_t* halves = static_cast<const uint16_t*>(src);
  if (dtype == DType::kF16) {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = F16ToFloat(halves[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = Bf16ToFloat(halves[i]);
  }
}

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_WIDEN_H_
