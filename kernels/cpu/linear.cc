// Dense projections through cblas; see linear.h.
#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <cstring>

namespace mlkv::cpu {

void Linear(const float* in, int64_t rows, int64_t k, const float* weight, const float* bias,
            int64_t n, float* out) {
  // Start from the bias (or zero) and accumulate with beta = 1: saves a pass over the output.
  float beta = 0.0f;
  if (bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * n, bias, sizeof(float) * n);
    beta = 1.0f;
  }
  if (rows == 1) {
    // A single row is a matrix-vector product; GEMV streams the weights once, which is what
    // bounds batch-1 decode.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f,
                weight, static_cast<int>(k), in, 1, beta, out, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
              static_cast<int>(n), static_cast<int>(k), 1.0f, in, static_cast<int>(k), weight,
              static_cast<int>(k), beta, out, static_cast<int>(n));
}

}  // namespace mlkv::cpu
