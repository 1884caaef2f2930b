// exp, erf and tanh for float32 written as straight-line arithmetic, so that loops calling them
// under `#pragma omp simd` vectorise (libm's versions are opaque calls the compiler cannot
// vectorise without -ffast-math). Accuracy: relative error below 3e-7 for FastExp, absolute
// error below 5e-7 for FastErf and 2e-7 for FastTanh (vector_math_test.cc checks against libm).
#ifndef MLKV_KERNELS_CPU_VECTOR_MATH_H_
#define MLKV_KERNELS_CPU_VECTOR_MATH_H_

#include <cstdint>
#include <cstring>

namespace mlkv::cpu {

#pragma omp declare simd
inline float FastExp(float x) {
  // exp(x) = 2^n * exp(r), n = round(x / ln 2), |r| <= ln2 / 2, with ln 2 split in two parts so
  // that r is exact; exp(r) by its degree-6 Taylor polynomial (error < 2e-8 on that interval).
  // rint, not floor(v + 0.5): GCC 12 vectorises rint (vrndscaleps) but leaves floor scalar unless
  // -fno-trapping-math, which silently turned every loop calling this scalar.
  // Clamping below at -88 makes n = -127 there, so that 2^n's bit pattern is 0: exp(x) is exactly
  // 0 below about -87.7, where it leaves float's normal range, as a masked (-inf) logit's
  // probability must be. (A select on x < -87.7 instead would stop GCC from vectorising.)
  x = x < -88.0f ? -88.0f : (x > 88.7f ? 88.7f : x);
  const float n = __builtin_rintf(x * 1.44269504088896341f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

#pragma omp declare simd
inline float FastErf(float x) {
  // Abramowitz & Stegun 7.1.26: erf(|x|) = 1 - poly(t) e^{-x^2}, t = 1 / (1 + p|x|); absolute
  // error 1.5e-7 in exact arithmetic, below 5e-7 once evaluated in float.
  const float ax = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  poly *= t;
  const float y = 1.0f - poly * FastExp(-ax * ax);
  return x < 0.0f ? -y : y;
}

#pragma omp declare simd
inline float FastTanh(float x) {
  // tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)); saturates cleanly for large |x|.
  const float ax = x < 0.0f ? -x : x;
  const float y = 1.0f - 2.0f / (FastExp(2.0f * ax) + 1.0f);
  return x < 0.0f ? -y : y;
}

}  // namespace mlkv::cpu

#endif  // MLKV_KERNELS_CPU_VECTOR_MATH_H_
