// Row-wise argmax over a batch of rows; see argmax.h.
#include "kernels/cpu/argmax.h"

namespace mlkv::cpu {

void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out) {
#pragma omp parallel for if (rows * cols > (int64_t{1} << 20))
  for (int64_t r = 0; r < rows; ++r) out[r] = static_cast<int32_t>(ArgmaxRow(in + r * cols, cols));
}

}  // namespace mlkv::cpu
