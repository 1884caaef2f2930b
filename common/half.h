// Conversions between float32 and the 16-bit float formats stored in checkpoints and the KV
// cache (IEEE binary16 and bfloat16), bit-exact and without hardware support.
#ifndef MLKV_COMMON_HALF_H_
#define MLKV_COMMON_HALF_H_

#include <cstdint>
#include <cstring>

namespace mlkv {

inline float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint32_t FloatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

// bfloat16 is the upper half of a float32.
inline float Bf16ToFloat(uint16_t h) { return BitsToFloat(static_cast<uint32_t>(h) << 16); }

// Round to nearest even, as PyTorch does; NaN stays NaN (quiet).
inline uint16_t FloatToBf16(float f) {
  uint32_t bits = FloatToBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

// IEEE 754 binary16 -> float32, subnormals included. Branch-free (one select), so that loops
// converting a cache block vectorise: the exponent and mantissa bits, moved to float32's places,
// read as a float32 2^112 times too small (the exponent biases are 127 and 15), subnormals
// included; one exact multiply scales them. Only inf and NaN need their exponent set instead.
inline float F16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t magnitude = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const float finite = BitsToFloat(magnitude) * 0x1p112f;
  const float special = BitsToFloat(magnitude | 0x7f800000u);  // inf, nan (payload kept)
  const float value = magnitude >= 0x0f800000u ? special : finite;
  return BitsToFloat(FloatToBits(value) | sign);
}

// float32 -> IEEE binary16 with round to nearest even; overflow goes to infinity.
inline uint16_t FloatToF16(float f) {
  const uint32_t bits = FloatToBits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;   // nan
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                        // below the smallest normal: subnormal
    // Adding 0.5 (as a float) aligns the mantissa so the FPU does the rounding for us.
    const float shifted = BitsToFloat(abs) + 0.5f;
    return sign | static_cast<uint16_t>(FloatToBits(shifted) - 0x3f000000u);
  }
  const uint32_t mantissa_odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xc8000fffu + mantissa_odd;  // rebias exponent, round
  return sign | static_cast<uint16_t>(rounded >> 13);
}

}  // namespace mlkv

#endif  // MLKV_COMMON_HALF_H_
