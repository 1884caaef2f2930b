// NeoX rotary position embedding on the CPU; see rotary.h.
#include "kernels/cpu/rotary.h"

namespace mlkv::cpu {

void Rotary(float* x, int64_t rows, int64_t num_heads, int64_t head_dim, const int32_t* positions,
            const RotaryView& rotary) {
  if (rotary.rotary_dims == 0) return;
#pragma omp parallel for if (rows * num_heads > 256)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < num_heads; ++h) {
      RotateHead(x + (r * num_heads + h) * head_dim, positions[r], rotary);
    }
  }
}

}  // namespace mlkv::cpu
