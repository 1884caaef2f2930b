// Row-wise sampling on the CPU: the reference for Backend::SampleRows (kernels/backend.h). Written
// to be read rather than to be fast: it gathers the candidates and sorts them where the CUDA
// kernel bisects on keys and scans, so that the two are independent readings of one definition.
#ifndef MLKV_KERNELS_CPU_SAMPLE_ROWS_H_
#define MLKV_KERNELS_CPU_SAMPLE_ROWS_H_

#include <cstdint>

#include "kernels/backend.h"

namespace mlkv::cpu {

// One row's token, and how near the draw came to another: the smallest distance between the
// target u x kept_total and a running sum of the index-order walk, relative to kept_total
// (+infinity when nothing was drawn: temperature 0 or a non-finite maximum). An implementation that
// adds in another order agrees on the token whenever the margin exceeds its rounding error, unless
// its top-p cut moved too, which needs a prefix's mass within rounding of the threshold.
struct SampledToken {
  int32_t token;
  double margin;
};

// Samples row[0, cols) (cols >= 1) by the rule of Backend::SampleRows.
SampledToken SampleRow(const float* row, int64_t cols, const RowSampling& params);

void SampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                int32_t* out);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_SAMPLE_ROWS_H_
