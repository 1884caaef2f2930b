// Philox4x32-10, the counter-based random number generator of Salmon, Moraes, Dror and Shaw,
// "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), with the constants of their reference
// implementation, Random123. Counter-based: the n-th number of a stream is a pure function of the
// key and n, so a device thread computes any draw directly, no generator state travels between
// steps, and host and device code give the same bits (philox_test.cc checks the published
// known-answer vectors).
#ifndef MLKV_COMMON_PHILOX_H_
#define MLKV_COMMON_PHILOX_H_

#include <cstdint>

#include "common/host_device.h"

namespace mlkv {

// 128 bits: a counter in, or four random words out.
struct PhiloxBlock {
  uint32_t words[4];
};

struct PhiloxKey {
  uint32_t words[2];
};

MLKV_HOST_DEVICE inline PhiloxBlock Philox4x32_10(PhiloxBlock counter, PhiloxKey key) {
  constexpr uint32_t kMultiplier0 = 0xD2511F53u, kMultiplier1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key increments per round
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) {
      key.words[0] += kWeyl0;
      key.words[1] += kWeyl1;
    }
    const uint64_t product0 = uint64_t{kMultiplier0} * counter.words[0];
    const uint64_t product1 = uint64_t{kMultiplier1} * counter.words[2];
    counter = {{static_cast<uint32_t>(product1 >> 32) ^ counter.words[1] ^ key.words[0],
                static_cast<uint32_t>(product1),
                static_cast<uint32_t>(product0 >> 32) ^ counter.words[3] ^ key.words[1],
                static_cast<uint32_t>(product0)}};
  }
  return counter;
}

// The index-th uniform double in [0, 1) of the stream `seed`: key = seed's low and high 32 bits,
// counter = index's low and high 32 bits then two zeros; the top 53 of the 64 bits
// (word 1 << 32 | word 0) of the output make the double, so every value is a multiple of 2^-53.
MLKV_HOST_DEVICE inline double PhiloxUniform(uint64_t seed, uint64_t index) {
  const PhiloxBlock out =
      Philox4x32_10({{static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), 0u, 0u}},
                    {{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}});
  const uint64_t bits = (uint64_t{out.words[1]} << 32) | out.words[0];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace mlkv

#endif  // MLKV_COMMON_PHILOX_H_
