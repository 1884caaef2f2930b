// Dense projections through cblas; see linear.h.
#include "kernels/cpu/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/widen.h"

namespace mlkv::cpu {
namespace {

// out[rows, n] (row stride ldc) = in[rows, k] * weight[n, k]^T + beta * out, float32 weights.
void Float32Product(const float* in, int64_t rows, int64_t k, const float* weight, int64_t n,
                    float beta, float* out, int64_t ldc) {
  if (rows == 1) {
    // A single row is a matrix-vector product; GEMV streams the weights once, which is what
    // bounds batch-1 decode.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f, weight,
                static_cast<int>(k), in, 1, beta, out, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
              static_cast<int>(k), 1.0f, in, static_cast<int>(k), weight, static_cast<int>(k), beta,
              out, static_cast<int>(ldc));
}

// The BLAS has no f16/bf16 x float32 product, so the weights are widened a panel of rows at a
// time into a float32 buffer that stays in the last-level cache while the BLAS reads it: a decode
// step then streams each weight from memory once at its narrow width, instead of widening the
// whole matrix into memory first (which would also cost a float32 copy of the largest matrix).
// 4 MiB measured faster than 1 MiB (L2-sized) on a 32 MiB-L3 EPYC: fewer BLAS calls, each
// repacking the input, and at batch 1 the f16 GEMMs beat float32's (docs/benchmarks.md).
constexpr int64_t kPanelFloats = int64_t{1} << 20;  // 4 MiB

void NarrowWeightProduct(const float* in, int64_t rows, int64_t k, const WeightView& weight,
                         int64_t n, float beta, float* out) {
  const int64_t panel_rows = std::clamp<int64_t>(kPanelFloats / k / 16 * 16, 16, n);
  // One per calling thread (backends may run on several); the OpenMP workers below fill the
  // caller's buffer, so they must see it through a pointer, not their own thread_local.
  thread_local std::vector<float> panel_buffer;
  panel_buffer.resize(panel_rows * k);
  float* const panel = panel_buffer.data();
  const auto* halves = static_cast<const uint16_t*>(weight.data);
  for (int64_t first = 0; first < n; first += panel_rows) {
    const int64_t count = std::min(panel_rows, n - first);
#pragma omp parallel for
    for (int64_t r = 0; r < count; ++r) {
      WidenToFloat(halves + (first + r) * k, weight.dtype, k, panel + r * k);
    }
    Float32Product(in, rows, k, panel, count, beta, out + first, n);
  }
}

}  // namespace

void Linear(const float* in, int64_t rows, int64_t k, const WeightView& weight, const float* bias,
            int64_t n, LinearEpilogue epilogue, float* out) {
  // The BLAS adds the product onto out (beta = 1) when out already holds the rest of the sum:
  // the residual when accumulating, the bias placed first otherwise. That saves a pass over out.
  float beta = 0.0f;
  if (epilogue == LinearEpilogue::kAccumulate) {
    beta = 1.0f;
    if (bias != nullptr) {
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < n; ++j) out[r * n + j] += bias[j];
      }
    }
  } else if (bias != nullptr) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * n, bias, sizeof(float) * n);
    beta = 1.0f;
  }
  if (weight.dtype == DType::kF32) {
    Float32Product(in, rows, k, static_cast<const float*>(weight.data), n, beta, out, n);
  } else {
    NarrowWeightProduct(in, rows, k, weight, n, beta, out);
  }
  if (epilogue == LinearEpilogue::kGeluExact) GeluExact(out, rows * n);
  if (epilogue == LinearEpilogue::kGeluTanh) GeluTanh(out, rows * n);
}

}  // namespace mlkv::cpu
