// The unnormalised probability of Backend::SampleRows (step 4 in kernels/backend.h), compiled by
// the CPU reference and by the CUDA kernel alike, so that both weigh every token the same way.
#ifndef MLKV_KERNELS_SAMPLE_WEIGHT_H_
#define MLKV_KERNELS_SAMPLE_WEIGHT_H_

#include <cmath>

#include "common/host_device.h"

namespace mlkv {

// exp((logit - max) / temperature). The difference from the max is <= 0, so a tiny temperature
// takes it towards -inf (p = 0) rather than overflowing as logit / temperature would. The
// quotient is float32 (correctly rounded on both sides); the exp is double because float32 expf
// differs between libm (nearly correctly rounded) and CUDA (within 2 ulp): the backends would
// then disagree by ~1e-7 of the mass on where a draw's boundaries lie, where double exps, each
// within an ulp of 1e-16, leave only the order of the sums to differ.
MLKV_HOST_DEVICE inline double SampleWeight(float logit, float max, float temperature) {
  const float scaled = (logit - max) / temperature;
  return exp(static_cast<double>(scaled));
}

}  // namespace mlkv

#endif  // MLKV_KERNELS_SAMPLE_WEIGHT_H_
