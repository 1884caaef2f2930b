// Row-wise and elementwise CPU ops; see elementwise.h. Parallel over rows or elements with
// OpenMP once the work is large enough to pay for waking the threads.
#include "kernels/cpu/elementwise.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/vector_math.h"
#include "kernels/cpu/widen.h"

namespace mlkv::cpu {
namespace {
constexpr int64_t kParallelThreshold = 1 << 14;  // elements; below this one thread is faster
}  // namespace

void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows,
               float* out) {
  const int64_t element_bytes = DTypeBytes(table.dtype);
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const char* row =
        static_cast<const char*>(table.data) + static_cast<int64_t>(ids[r]) * cols * element_bytes;
    WidenToFloat(row, table.dtype, cols, out + r * cols);
  }
}

void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows, float* out) {
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(out + r * cols, in + static_cast<int64_t>(indices[r]) * cols, sizeof(float) * cols);
  }
}

void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
               int64_t cols, float* out) {
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * cols;
    float* y = out + r * cols;
    // Two passes (mean, then centred variance) in double: exact enough for a reference and
    // free of the cancellation of E[x^2] - E[x]^2.
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += x[c];
    const double mean = sum / static_cast<double>(cols);
    double sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) sq += (x[c] - mean) * (x[c] - mean);
    const float inv_std = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(cols) + eps));
    const float mean_f = static_cast<float>(mean);
    for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - mean_f) * inv_std * gamma[c] + beta[c];
  }
}

void GeluExact(float* x, int64_t count) {
#pragma omp parallel for simd if (count > kParallelThreshold)
  for (int64_t i = 0; i < count; ++i) {
    x[i] = 0.5f * x[i] * (1.0f + FastErf(x[i] * static_cast<float>(M_SQRT1_2)));
  }
}

void GeluTanh(float* x, int64_t count) {
  const float kSqrt2OverPi = 0.7978845608028654f;
#pragma omp parallel for simd if (count > kParallelThreshold)
  for (int64_t i = 0; i < count; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + FastTanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

}  // namespace mlkv::cpu
