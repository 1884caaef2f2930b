// When the requests of an open-loop run arrive: gaps drawn from a gamma distribution with mean
// 1/rate, so that the load does not depend on how fast the server answers.
#ifndef MLKV_TOOLS_LOADGEN_ARRIVAL_PROCESS_H_
#define MLKV_TOOLS_LOADGEN_ARRIVAL_PROCESS_H_

#include <cstdint>
#include <random>

namespace mlkv::loadgen {

// Gamma gaps with shape `burstiness` and mean 1/rate: burstiness 1 is a Poisson process
// (exponential gaps), below 1 requests come in bursts, above 1 more evenly. An infinite rate
// sends every request at once (all gaps 0).
// Not thread-safe: one dispatcher draws the gaps.
class ArrivalProcess {
 public:
  // rate > 0 (or +inf), burstiness > 0.
  ArrivalProcess(double rate, double burstiness, uint64_t seed);

  double NextGapSeconds();

 private:
  const bool all_at_once_;
  std::mt19937_64 rng_;
  std::gamma_distribution<double> gap_;
};

}  // namespace mlkv::loadgen

#endif  // MLKV_TOOLS_LOADGEN_ARRIVAL_PROCESS_H_
