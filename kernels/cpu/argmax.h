// Row-wise argmax on the CPU: the reference for Backend::ArgmaxRows (see kernels/backend.h), and
// the host sampler's greedy pick, so that a device argmax and a host one choose the same token.
#ifndef MLKV_KERNELS_CPU_ARGMAX_H_
#define MLKV_KERNELS_CPU_ARGMAX_H_

#include <cstdint>
#include <limits>

namespace mlkv::cpu {

// The lowest index of the largest value of row[0, cols); NaN is never chosen unless the whole row
// is NaN (then cols - 1). cols >= 1. Two passes, each free of loop-carried branches so that it
// vectorises (a one-pass scan keeping the index serialises on every comparison): the maximum,
// NaN skipped because every comparison with NaN is false; then the first index holding it.
inline int64_t ArgmaxRow(const float* row, int64_t cols) {
  float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
  for (int64_t c = 0; c < cols; ++c) max = row[c] > max ? row[c] : max;
  for (int64_t c = 0; c < cols; ++c) {
    if (row[c] == max) return c;
  }
  return cols - 1;  // no value equals the initial -inf: every one is NaN
}

void ArgmaxRows(const float* in, int64_t rows, int64_t cols, int32_t* out);

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_ARGMAX_H_
