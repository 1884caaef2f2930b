// Row-wise and elementwise CPU ops: embedding gather, row gather, layernorm, GELU.
// Each is the readable float32 reference that other backends are tested against.
#ifndef MLKV_KERNELS_CPU_ELEMENTWISE_H_
#define MLKV_KERNELS_CPU_ELEMENTWISE_H_

#include <cstdint>

#include "kernels/backend.h"

namespace mlkv::cpu {

void Embedding(const WeightView& table, int64_t cols, const int32_t* ids, int64_t rows, float* out);
void GatherRows(const float* in, int64_t cols, const int32_t* indices, int64_t rows, float* out);
void LayerNorm(const float* in, const float* gamma, const float* beta, float eps, int64_t rows,
               int64_t cols, float* out);
// x = gelu(x) in place, the erf form and the tanh approximation (Linear's GELU epilogues).
void GeluExact(float* x, int64_t count);
void GeluTanh(float* x, int64_t count);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_ELEMENTWISE_H_
