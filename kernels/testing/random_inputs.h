// Test helper: random inputs and rotary tables shared by the kernel tests of every backend
// (kernels/cpu/cpu_kernels_test.cc, kernels/cuda/cuda_kernels_test.cc). For tests only.
#ifndef MLKV_KERNELS_TESTING_RANDOM_INPUTS_H_
#define MLKV_KERNELS_TESTING_RANDOM_INPUTS_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "common/dtype.h"
#include "common/half.h"

namespace mlkv::testing {

// n draws from a normal distribution.
inline std::vector<float> RandomVector(size_t n, std::mt19937& rng, float scale = 1.0f,
                                       float mean = 0.0f) {
  std::normal_distribution<float> dist(mean, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A rotary table as the model builds it, computed in double: [position][rotary_dims / 2][cos, sin].
inline std::vector<float> CosSinTable(int64_t positions, int64_t rotary_dims,
                                      double base = 10000.0) {
  std::vector<float> table(positions * rotary_dims);
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < rotary_dims / 2; ++i) {
      const double angle = p * std::pow(base, -2.0 * i / rotary_dims);
      table[p * rotary_dims + 2 * i] = static_cast<float>(std::cos(angle));
      table[p * rotary_dims + 2 * i + 1] = static_cast<float>(std::sin(angle));
    }
  }
  return table;
}

// x rounded to the nearest value of `dtype` (nearest even), as float32.
inline float RoundTo(float x, DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return x;
    case DType::kF16:
      return F16ToFloat(FloatToF16(x));
    case DType::kBF16:
      return Bf16ToFloat(FloatToBf16(x));
  }
  return x;
}

// The bits of each value rounded to `dtype` (kF16 or kBF16): a 16-bit weight or table as a
// backend stores it.
inline std::vector<uint16_t> NarrowBits(const std::vector<float>& values, DType dtype) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    bits[i] = dtype == DType::kF16 ? FloatToF16(values[i]) : FloatToBf16(values[i]);
  }
  return bits;
}

}  // namespace mlkv::testing

#endif  // MLKV_KERNELS_TESTING_RANDOM_INPUTS_H_
