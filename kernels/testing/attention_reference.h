// Test helper: causal attention over cached keys and values in double precision, exactly or with
// the roundings of the CUDA tensor-core kernel (kernels/cuda/paged_attention_mma.cu), whose
// distance from the exact result is the error a same-dtype computation makes. For tests only.
#ifndef MLKV_KERNELS_TESTING_ATTENTION_REFERENCE_H_
#define MLKV_KERNELS_TESTING_ATTENTION_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/dtype.h"
#include "kernels/paged_kv.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv::testing {

struct AttentionReferenceInput {
  AttentionParams params;  // query heads, scale, keys rotated by their position as they are read
  int64_t num_kv_heads = 0, head_dim = 0;
  std::vector<float> q;  // [row][params.num_heads][head_dim]
  std::vector<int32_t> positions;
  std::vector<int32_t> query_start;  // [num_seqs + 1]
  // Per sequence, [token][num_kv_head][head_dim]: what the cache holds (already in its dtype).
  std::vector<std::vector<float>> keys, values;
  int64_t rotary_dims = 0;
  std::vector<float> cos_sin;  // CosSinTable layout
};

// out[row][head][d] with every row attending to its sequence's tokens 0..position. `narrow`: the
// tensor-core kernel's roundings to that dtype: keys rotated in float32 and rounded, queries
// scaled by scale * log2(e) in float32 and rounded, and each softmax weight rounded before it
// multiplies a value (the sum that normalises them is not).
inline std::vector<double> ReferenceAttention(const AttentionReferenceInput& in,
                                              std::optional<DType> narrow) {
  const int64_t d = in.head_dim, num_heads = in.params.num_heads;
  const int64_t group = num_heads / in.num_kv_heads;
  const float scale = in.params.scale;
  const int64_t rows = static_cast<int64_t>(in.positions.size());
  const int64_t half = in.rotary_dims / 2;
  constexpr float kLog2e = 1.4426950408889634f;
  auto round = [&](float x) { return narrow ? RoundTo(x, *narrow) : x; };
  std::vector<double> out(rows * num_heads * d, 0.0);
  for (int64_t seq = 0; seq + 1 < static_cast<int64_t>(in.query_start.size()); ++seq) {
    for (int64_t row = in.query_start[seq]; row < in.query_start[seq + 1]; ++row) {
      const int64_t tokens = in.positions[row] + 1;
      for (int64_t head = 0; head < num_heads; ++head) {
        const int64_t kv_head = head / group;
        const float* q = in.q.data() + (row * num_heads + head) * d;
        std::vector<double> scores(tokens);
        for (int64_t t = 0; t < tokens; ++t) {
          const float* cached = in.keys[seq].data() + (t * in.num_kv_heads + kv_head) * d;
          std::vector<double> key(cached, cached + d);
          if (in.params.rotate_keys_on_read) {
            const float* cs = in.cos_sin.data() + t * in.rotary_dims;
            for (int64_t i = 0; i < half; ++i) {
              const float x = cached[i], y = cached[i + half];
              if (narrow) {
                key[i] = round(x * cs[2 * i] - y * cs[2 * i + 1]);
                key[i + half] = round(y * cs[2 * i] + x * cs[2 * i + 1]);
              } else {
                key[i] = double{x} * cs[2 * i] - double{y} * cs[2 * i + 1];
                key[i + half] = double{y} * cs[2 * i] + double{x} * cs[2 * i + 1];
              }
            }
          }
          double dot = 0.0;
          for (int64_t i = 0; i < d; ++i) {
            dot += (narrow ? round(q[i] * (scale * kLog2e)) : double{q[i]} * scale) * key[i];
          }
          scores[t] = dot;
        }
        const double max = *std::max_element(scores.begin(), scores.end());
        double sum = 0.0;
        for (double& s : scores) {
          s = narrow ? std::exp2(s - max) : std::exp(s - max);
          sum += s;
        }
        double* o = out.data() + (row * num_heads + head) * d;
        for (int64_t t = 0; t < tokens; ++t) {
          const double p = narrow ? round(static_cast<float>(scores[t])) : scores[t];
          const float* value = in.values[seq].data() + (t * in.num_kv_heads + kv_head) * d;
          for (int64_t i = 0; i < d; ++i) o[i] += p * value[i] / sum;
        }
      }
    }
  }
  return out;
}

}  // namespace mlkv::testing

#endif  // MLKV_KERNELS_TESTING_ATTENTION_REFERENCE_H_
