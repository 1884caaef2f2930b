// Gamma-distributed arrival gaps; see arrival_process.h.
#include "tools/loadgen/arrival_process.h"

#include <cmath>

namespace mlkv::loadgen {

// Gamma(shape k, scale theta) has mean k x theta: theta = 1 / (rate x k) gives mean 1/rate.
ArrivalProcess::ArrivalProcess(double rate, double burstiness, uint64_t seed)
    : all_at_once_(std::isinf(rate)),
      rng_(seed),
      gap_(burstiness, all_at_once_ ? 1.0 : 1.0 / (rate * burstiness)) {}

double ArrivalProcess::NextGapSeconds() { return all_at_once_ ? 0.0 : gap_(rng_); }

}  // namespace mlkv::loadgen
