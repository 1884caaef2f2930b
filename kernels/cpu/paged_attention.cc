// Paged attention and cache write on the CPU; see paged_attention.h and paged_kv.h.
//
// The CPU backend's layout inside one block of one KV head (block_size slots, head_dim dims):
//
//   K: [head_dim][block_size]   keys transposed: dim i of every slot is one contiguous vector
//   V: [block_size][head_dim]   values as rows
//
// so both halves of attention vectorise without horizontal sums: scores of a block are
// sum_i q[i] * K[i][0..n) (vectors along the slots), and the output is sum_t p[t] * V[t][0..d)
// (vectors along the dims). Pools: [num_blocks][num_kv_heads][that block].
#include "kernels/cpu/paged_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "kernels/cpu/rotary.h"
#include "kernels/cpu/vector_math.h"
#include "kernels/cpu/widen.h"

namespace mlkv::cpu {
namespace {

// Element offset of the start of (block, kv_head) in either pool.
int64_t BlockOffset(const KvCacheView& cache, int64_t block, int64_t kv_head) {
  return (block * cache.num_kv_heads + kv_head) * cache.block_size * cache.head_dim;
}

void StoreElement(const KvCacheView& cache, void* pool, int64_t offset, float value) {
  switch (cache.dtype) {
    case DType::kF32: static_cast<float*>(pool)[offset] = value; return;
    case DType::kF16: static_cast<uint16_t*>(pool)[offset] = FloatToF16(value); return;
    case DType::kBF16: static_cast<uint16_t*>(pool)[offset] = FloatToBf16(value); return;
  }
}

// One (block, head) of a pool as float32: in place for a float32 cache, else converted into
// `scratch` (block_size x head_dim floats).
const float* BlockAsFloat(const KvCacheView& cache, const void* pool, int64_t offset,
                          float* scratch) {
  if (cache.dtype == DType::kF32) return static_cast<const float*>(pool) + offset;
  WidenToFloat(static_cast<const uint16_t*>(pool) + offset, cache.dtype,
               cache.block_size * cache.head_dim, scratch);
  return scratch;
}

// Rotates the n keys of a transposed block in place, slot t by position first + t.
void RotateKeyColumns(float* keys, int64_t block_size, int64_t first, int64_t n,
                      const RotaryView& rotary) {
  const int64_t half = rotary.rotary_dims / 2;
  for (int64_t i = 0; i < half; ++i) {
    float* xi = keys + i * block_size;
    float* xj = keys + (i + half) * block_size;
    for (int64_t t = 0; t < n; ++t) {
      const float* cs = rotary.cos_sin + (first + t) * rotary.rotary_dims + 2 * i;
      const float a = xi[t], b = xj[t];
      xi[t] = a * cs[0] - b * cs[1];
      xj[t] = b * cs[0] + a * cs[1];
    }
  }
}

// scores[t] = scale * sum_i q[i] * keys[i][t] for t < n (keys transposed, row stride
// kBlockSize). With the block width known at compile time the partial sums stay in vector
// registers (a runtime width made the compiler keep them in memory: 3x slower); two of them
// (even and odd dims) halve the multiply-add dependency chain. All kBlockSize lanes are computed
// and only the first n stored: the block is allocated in full, its unused slots are just unread.
template <int64_t kBlockSize>
void ScoreBlockFixed(const float* q, const float* keys, int64_t n, int64_t d, float scale,
                     float* scores) {
  float even[kBlockSize] = {}, odd[kBlockSize] = {};
  int64_t i = 0;
  for (; i + 1 < d; i += 2) {
    const float q0 = q[i], q1 = q[i + 1];
    const float *k0 = keys + i * kBlockSize, *k1 = k0 + kBlockSize;
#pragma omp simd
    for (int64_t t = 0; t < kBlockSize; ++t) {
      even[t] += q0 * k0[t];
      odd[t] += q1 * k1[t];
    }
  }
  for (; i < d; ++i) {
#pragma omp simd
    for (int64_t t = 0; t < kBlockSize; ++t) even[t] += q[i] * keys[i * kBlockSize + t];
  }
  for (int64_t t = 0; t < n; ++t) scores[t] = (even[t] + odd[t]) * scale;
}

// The same for any block size (used for block sizes other than 16 and 32).
void ScoreBlockAnyWidth(const float* q, const float* keys, int64_t block_size, int64_t n,
                        int64_t d, float scale, float* scores) {
  for (int64_t t = 0; t < n; ++t) {
    float sum = 0.0f;
    for (int64_t i = 0; i < d; ++i) sum += q[i] * keys[i * block_size + t];
    scores[t] = sum * scale;
  }
}

void ScoreBlock(const float* q, const float* keys, int64_t block_size, int64_t n, int64_t d,
                float scale, float* scores) {
  switch (block_size) {
    case 16: return ScoreBlockFixed<16>(q, keys, n, d, scale, scores);
    case 32: return ScoreBlockFixed<32>(q, keys, n, d, scale, scores);
    default: return ScoreBlockAnyWidth(q, keys, block_size, n, d, scale, scores);
  }
}

// acc[i] += sum_t p[t] * values[t][i] for i < d, the running sums in registers when the head
// dim is known at compile time.
template <int64_t kHeadDim>
void AccumulateBlockFixed(const float* p, const float* values, int64_t n, float* acc) {
  float sum[kHeadDim];
  std::copy(acc, acc + kHeadDim, sum);
  for (int64_t t = 0; t < n; ++t) {
    const float pt = p[t];
    const float* row = values + t * kHeadDim;
#pragma omp simd
    for (int64_t i = 0; i < kHeadDim; ++i) sum[i] += pt * row[i];
  }
  std::copy(sum, sum + kHeadDim, acc);
}

void AccumulateBlock(const float* p, const float* values, int64_t n, int64_t d, float* acc) {
  switch (d) {
    case 64: return AccumulateBlockFixed<64>(p, values, n, acc);
    case 128: return AccumulateBlockFixed<128>(p, values, n, acc);
    default:
      for (int64_t t = 0; t < n; ++t) {
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) acc[i] += p[t] * values[t * d + i];
      }
  }
}

// Query heads that share a KV head are taken kHeadTile at a time below, so that each key or value
// vector loaded from the block feeds kHeadTile heads' multiply-adds: one head at a time, the loops
// are bound by loads (one vector load per multiply-add), which is what made groups of 12 (MQA,
// MLKV) compute-bound at a fraction of the core's multiply-add rate.
constexpr int64_t kHeadTile = 4;

// scores[h * score_stride + t] = scale * sum_i q[h][i] * keys[i][t] for kHeadTile heads (rows of
// q, d apart) and t < n, the block width known at compile time as in ScoreBlockFixed.
template <int64_t kBlockSize>
void ScoreHeadTileFixed(const float* q, const float* keys, int64_t n, int64_t d, float scale,
                        float* scores, int64_t score_stride) {
  float sum[kHeadTile][kBlockSize] = {};
  for (int64_t i = 0; i < d; ++i) {
    const float* k = keys + i * kBlockSize;
    for (int64_t h = 0; h < kHeadTile; ++h) {
      const float qi = q[h * d + i];
#pragma omp simd
      for (int64_t t = 0; t < kBlockSize; ++t) sum[h][t] += qi * k[t];
    }
  }
  for (int64_t h = 0; h < kHeadTile; ++h) {
    for (int64_t t = 0; t < n; ++t) scores[h * score_stride + t] = sum[h][t] * scale;
  }
}

// Scores of `group` adjacent query heads (rows of q) against one block's keys, head h's at
// scores + h * score_stride: kHeadTile heads at a time where the block width is one the tile is
// built for, the rest one by one.
void ScoreGroup(const float* q, const float* keys, int64_t block_size, int64_t n, int64_t d,
                int64_t group, float scale, float* scores, int64_t score_stride) {
  int64_t h = 0;
  for (; h + kHeadTile <= group && (block_size == 16 || block_size == 32); h += kHeadTile) {
    if (block_size == 16) {
      ScoreHeadTileFixed<16>(q + h * d, keys, n, d, scale, scores + h * score_stride,
                             score_stride);
    } else {
      ScoreHeadTileFixed<32>(q + h * d, keys, n, d, scale, scores + h * score_stride,
                             score_stride);
    }
  }
  for (; h < group; ++h) {
    ScoreBlock(q + h * d, keys, block_size, n, d, scale, scores + h * score_stride);
  }
}

// acc[h][i] += sum_t p[h * p_stride + t] * values[t][i] for kHeadTile heads (rows of acc) and
// i < kHeadDim, a chunk of dims at a time so that the tile's running sums stay in registers.
template <int64_t kHeadDim>
void AccumulateHeadTileFixed(const float* p, int64_t p_stride, const float* values, int64_t n,
                             float* acc) {
  constexpr int64_t kChunk = 32;
  static_assert(kHeadDim % kChunk == 0);
  for (int64_t c = 0; c < kHeadDim; c += kChunk) {
    float sum[kHeadTile][kChunk];
    for (int64_t h = 0; h < kHeadTile; ++h) {
      std::copy(acc + h * kHeadDim + c, acc + h * kHeadDim + c + kChunk, sum[h]);
    }
    for (int64_t t = 0; t < n; ++t) {
      const float* row = values + t * kHeadDim + c;
      for (int64_t h = 0; h < kHeadTile; ++h) {
        const float pt = p[h * p_stride + t];
#pragma omp simd
        for (int64_t i = 0; i < kChunk; ++i) sum[h][i] += pt * row[i];
      }
    }
    for (int64_t h = 0; h < kHeadTile; ++h) {
      std::copy(sum[h], sum[h] + kChunk, acc + h * kHeadDim + c);
    }
  }
}

// The values of one block weighted by `group` adjacent heads' probabilities (head h's at
// p + h * p_stride) onto their accumulators (rows of acc): kHeadTile heads at a time for the head
// dims the tile is built for, the rest one by one.
void AccumulateGroup(const float* p, int64_t p_stride, const float* values, int64_t n, int64_t d,
                     int64_t group, float* acc) {
  int64_t h = 0;
  for (; h + kHeadTile <= group && (d == 64 || d == 128); h += kHeadTile) {
    if (d == 64) {
      AccumulateHeadTileFixed<64>(p + h * p_stride, p_stride, values, n, acc + h * d);
    } else {
      AccumulateHeadTileFixed<128>(p + h * p_stride, p_stride, values, n, acc + h * d);
    }
  }
  for (; h < group; ++h) AccumulateBlock(p + h * p_stride, values, n, d, acc + h * d);
}

// Per-thread scratch, reused across work items.
struct Scratch {
  std::vector<float> scores;  // [query head of the item][context]
  std::vector<float> block;   // one (block, head) of keys or values as float32
  std::vector<float> acc;     // [query head of the item][head_dim]
};

// Calls fn(first_token, n, block) for each block holding a sequence's tokens < context, in order.
template <typename Fn>
void ForEachCachedBlock(const KvCacheView& cache, const int32_t* block_table, int64_t context,
                        Fn&& fn) {
  const int64_t bs = cache.block_size;
  for (int64_t first = 0, b = 0; first < context; first += bs, ++b) {
    fn(first, std::min(bs, context - first), static_cast<int64_t>(block_table[b]));
  }
}

// Attention of one row's query heads that read KV heads [kv_begin, kv_begin + kv_count): their
// `group` query heads each are adjacent in q and out. Blocks are the outer loop and heads the
// inner one, so the item streams each block's slabs of those heads, which lie side by side.
void AttendKvHeads(const float* q_row, int64_t kv_begin, int64_t kv_count, int64_t group,
                   int64_t context, const int32_t* block_table, const KvCacheView& cache,
                   const RotaryView& rotary, const AttentionParams& params, Scratch& s,
                   float* out_row) {
  const int64_t d = cache.head_dim, bs = cache.block_size, heads = kv_count * group;
  const float* q_first = q_row + kv_begin * group * d;
  s.scores.resize(heads * context);
  s.block.resize(bs * d);
  s.acc.assign(heads * d, 0.0f);
  ForEachCachedBlock(cache, block_table, context, [&](int64_t first, int64_t n, int64_t block) {
    for (int64_t j = 0; j < kv_count; ++j) {
      const float* keys = BlockAsFloat(cache, cache.k_cache,
                                       BlockOffset(cache, block, kv_begin + j), s.block.data());
      if (params.rotate_keys_on_read) {
        if (keys != s.block.data()) std::memcpy(s.block.data(), keys, sizeof(float) * bs * d);
        RotateKeyColumns(s.block.data(), bs, first, n, rotary);
        keys = s.block.data();
      }
      ScoreGroup(q_first + j * group * d, keys, bs, n, d, group, params.scale,
                 s.scores.data() + j * group * context + first, context);
    }
  });
  // Softmax in float32 with the maximum subtracted (every term is in (0, 1], so a float sum loses
  // at most a few ulps even over long contexts).
  for (int64_t h = 0; h < heads; ++h) {
    float* p = s.scores.data() + h * context;
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
  ForEachCachedBlock(cache, block_table, context, [&](int64_t first, int64_t n, int64_t block) {
    for (int64_t j = 0; j < kv_count; ++j) {
      const float* values = BlockAsFloat(cache, cache.v_cache,
                                         BlockOffset(cache, block, kv_begin + j), s.block.data());
      AccumulateGroup(s.scores.data() + j * group * context + first, context, values, n, d,
                      group, s.acc.data() + j * group * d);
    }
  });
  std::memcpy(out_row + kv_begin * group * d, s.acc.data(), sizeof(float) * heads * d);
}

}  // namespace

void WriteKvCache(const float* k, const float* v, const StepBatchView& batch,
                  const KvCacheView& cache) {
  const int64_t d = cache.head_dim, bs = cache.block_size;
  const int64_t row_elems = cache.num_kv_heads * d;
#pragma omp parallel for if (batch.num_tokens * row_elems > (1 << 14))
  for (int64_t t = 0; t < batch.num_tokens; ++t) {
    if (batch.slot_mapping[t] < 0) continue;  // a padding row: writes nothing
    const int64_t block = batch.slot_mapping[t] / bs, slot = batch.slot_mapping[t] % bs;
    for (int64_t h = 0; h < cache.num_kv_heads; ++h) {
      const int64_t base = BlockOffset(cache, block, h);
      const float* k_row = k + t * row_elems + h * d;
      const float* v_row = v + t * row_elems + h * d;
      for (int64_t i = 0; i < d; ++i) {
        StoreElement(cache, cache.k_cache, base + i * bs + slot, k_row[i]);
        StoreElement(cache, cache.v_cache, base + slot * d + i, v_row[i]);
      }
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
  // Work items are (row, run of KV heads): whole rows when there are enough of them to keep every
  // thread busy (each item then streams whole blocks), single heads when rows are few (decode
  // at batch 1).
  const int64_t threads = omp_get_max_threads();
  const int64_t heads_per_item = std::clamp<int64_t>(
      batch.num_tokens * cache.num_kv_heads / (4 * threads), 1, cache.num_kv_heads);
  const int64_t chunks = (cache.num_kv_heads + heads_per_item - 1) / heads_per_item;
  const int64_t items = batch.num_tokens * chunks;
#pragma omp parallel
  {
    Scratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t row = item / chunks, kv_begin = (item % chunks) * heads_per_item;
      const int64_t kv_count = std::min(heads_per_item, cache.num_kv_heads - kv_begin);
      const int32_t* block_table = batch.block_tables + row_seq[row] * batch.max_blocks_per_seq;
      AttendKvHeads(q + row * row_elems, kv_begin, kv_count, group, batch.positions[row] + 1,
                    block_table, cache, rotary, params, scratch, out + row * row_elems);
    }
  }
}

}  // namespace mlkv::cpu
