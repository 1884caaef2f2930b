// Paged attention and cache write on the CPU; see paged_attention.h and paged_kv.h for layouts.
#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "kernels/cpu/rotary.h"
#include "kernels/cpu/vector_math.h"

namespace mlkv::cpu {
namespace {

// Element offset of (physical slot, kv head) in a group's cache.
int64_t CacheOffset(const KvCacheView& cache, int64_t slot, int64_t kv_head) {
  const int64_t block = slot / cache.block_size, offset = slot % cache.block_size;
  return ((block * cache.num_kv_heads + kv_head) * cache.block_size + offset) * cache.head_dim;
}

// A float32 view of one cached row: the row itself for a float32 cache, else `scratch` holding
// its conversion. Float32 rows are read in place, without a copy.
const float* RowAsFloat(const KvCacheView& cache, const void* base, int64_t offset,
                        float* scratch) {
  if (cache.dtype == DType::kF32) return static_cast<const float*>(base) + offset;
  const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
#pragma omp simd
  for (int64_t i = 0; i < cache.head_dim; ++i) scratch[i] = Bf16ToFloat(src[i]);
  return scratch;
}

void StoreRow(const KvCacheView& cache, void* base, int64_t offset, const float* src) {
  if (cache.dtype == DType::kF32) {
    std::memcpy(static_cast<float*>(base) + offset, src, sizeof(float) * cache.head_dim);
  } else {
    uint16_t* dst = static_cast<uint16_t*>(base) + offset;
    for (int64_t i = 0; i < cache.head_dim; ++i) dst[i] = FloatToBf16(src[i]);
  }
}

float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Per-thread scratch, reused across work items.
struct Scratch {
  std::vector<float> scores;  // [group][context]
  std::vector<float> row;     // one key or value, float32
  std::vector<float> acc;     // [group][head_dim]
};

// Attention of the `group` query heads of one row that read KV head `kv_head`.
void AttendOneKvHead(const float* q_row, int64_t kv_head, int64_t group, int64_t context,
                     const int32_t* block_table, const KvCacheView& cache, const RotaryView& rotary,
                     const AttentionParams& params, Scratch& s, float* out_row) {
  const int64_t d = cache.head_dim;
  s.scores.resize(group * context);
  s.row.resize(d);
  s.acc.assign(group * d, 0.0f);
  const float* q_first = q_row + kv_head * group * d;  // query heads of this KV head are adjacent
  for (int64_t t = 0; t < context; ++t) {
    const int64_t slot = static_cast<int64_t>(block_table[t / cache.block_size]) * cache.block_size +
                         t % cache.block_size;
    const float* key = RowAsFloat(cache, cache.k_cache, CacheOffset(cache, slot, kv_head),
                                  s.row.data());
    if (params.rotate_keys_on_read) {
      if (key != s.row.data()) std::memcpy(s.row.data(), key, sizeof(float) * d);
      RotateHead(s.row.data(), t, rotary);
      key = s.row.data();
    }
    for (int64_t g = 0; g < group; ++g) {
      s.scores[g * context + t] = Dot(q_first + g * d, key, d) * params.scale;
    }
  }
  // Softmax in float32 with the maximum subtracted (every term is in (0, 1], so a float sum loses
  // at most a few ulps even over long contexts).
  for (int64_t g = 0; g < group; ++g) {
    float* p = s.scores.data() + g * context;
    const float max = *std::max_element(p, p + context);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t t = 0; t < context; ++t) {
      p[t] = FastExp(p[t] - max);
      sum += p[t];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t t = 0; t < context; ++t) p[t] *= inv;
  }
  for (int64_t t = 0; t < context; ++t) {
    const int64_t slot = static_cast<int64_t>(block_table[t / cache.block_size]) * cache.block_size +
                         t % cache.block_size;
    const float* v = RowAsFloat(cache, cache.v_cache, CacheOffset(cache, slot, kv_head),
                                s.row.data());
    for (int64_t g = 0; g < group; ++g) {
      const float p = s.scores[g * context + t];
      float* acc = s.acc.data() + g * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) acc[i] += p * v[i];
    }
  }
  std::memcpy(out_row + kv_head * group * d, s.acc.data(), sizeof(float) * group * d);
}

}  // namespace

void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                  const KvCacheView& cache) {
  const int64_t row_elems = cache.num_kv_heads * cache.head_dim;
#pragma omp parallel for if (batch.num_tokens * row_elems > (1 << 14))
  for (int64_t t = 0; t < batch.num_tokens; ++t) {
    for (int64_t h = 0; h < cache.num_kv_heads; ++h) {
      const int64_t offset = CacheOffset(cache, batch.slot_mapping[t], h);
      StoreRow(cache, cache.k_cache, offset, k + t * row_elems + h * cache.head_dim);
      StoreRow(cache, cache.v_cache, offset, v + t * row_elems + h * cache.head_dim);
    }
  }
}

void PagedAttention(const float* q, const StepBatchView& batch, const KvCacheView& cache,
                    const RotaryView& rotary, const AttentionParams& params, float* out) {
  const int64_t group = params.num_heads / cache.num_kv_heads;
  const int64_t row_elems = params.num_heads * cache.head_dim;
  std::vector<int32_t> row_seq(batch.num_tokens);
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    for (int32_t r = batch.query_start[s]; r < batch.query_start[s + 1]; ++r) row_seq[r] = s;
  }
  const int64_t items = batch.num_tokens * cache.num_kv_heads;
#pragma omp parallel
  {
    Scratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t row = item / cache.num_kv_heads, kv_head = item % cache.num_kv_heads;
      const int32_t* block_table = batch.block_tables + row_seq[row] * batch.max_blocks_per_seq;
      AttendOneKvHead(q + row * row_elems, kv_head, group, batch.positions[row] + 1, block_table,
                      cache, rotary, params, scratch, out + row * row_elems);
    }
  }
}

}  // namespace mlkv::cpu
