// NeoX rotary position embedding on the CPU (rotate-half on the first rotary_dims of each head).
#ifndef MLKV_KERNELS_CPU_ROTARY_H_
#define MLKV_KERNELS_CPU_ROTARY_H_

#include <cstdint>

#include "kernels/paged_kv.h"

namespace mlkv::cpu {

// Rotates one head vector in place by `position`: for i < r/2, j = i + r/2,
// (x_i, x_j) -> (x_i cos - x_j sin, x_j cos + x_i sin).
inline void RotateHead(float* x, int64_t position, const RotaryView& rotary) {
  const int64_t half = rotary.rotary_dims / 2;
  const float* cs = rotary.cos_sin + position * rotary.rotary_dims;
  for (int64_t i = 0; i < half; ++i) {
    const float cos = cs[2 * i], sin = cs[2 * i + 1];
    const float xi = x[i], xj = x[i + half];
    x[i] = xi * cos - xj * sin;
    x[i + half] = xj * cos + xi * sin;
  }
}

void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
            const RotaryView& rotary);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_ROTARY_H_
