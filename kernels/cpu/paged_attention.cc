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
#include <limits>
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
    case DType::kF32:
      static_cast<float*>(pool)[offset] = value;
      return;
    case DType::kF16:
      static_cast<uint16_t*>(pool)[offset] = FloatToF16(value);
      return;
    case DType::kBF16:
      static_cast<uint16_t*>(pool)[offset] = FloatToBf16(value);
      return;
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
void ScoreBlockAnyWidth(const float* q, const float* keys, int64_t block_size, int64_t n, int64_t d,
                        float scale, float* scores) {
  for (int64_t t = 0; t < n; ++t) {
    float sum = 0.0f;
    for (int64_t i = 0; i < d; ++i) sum += q[i] * keys[i * block_size + t];
    scores[t] = sum * scale;
  }
}

void ScoreBlock(const float* q, const float* keys, int64_t block_size, int64_t n, int64_t d,
                float scale, float* scores) {
  switch (block_size) {
    case 16:
      return ScoreBlockFixed<16>(q, keys, n, d, scale, scores);
    case 32:
      return ScoreBlockFixed<32>(q, keys, n, d, scale, scores);
    default:
      return ScoreBlockAnyWidth(q, keys, block_size, n, d, scale, scores);
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
    case 64:
      return AccumulateBlockFixed<64>(p, values, n, acc);
    case 128:
      return AccumulateBlockFixed<128>(p, values, n, acc);
    default:
      for (int64_t t = 0; t < n; ++t) {
#pragma omp simd
        for (int64_t i = 0; i < d; ++i) acc[i] += p[t] * values[t * d + i];
      }
  }
}

// The query vectors that read one KV head (a group's heads, over one row or several rows of a
// sequence) are taken kQueryTile at a time below, so that each key or value vector loaded from a
// block feeds kQueryTile vectors' multiply-adds. One at a time, the loops are bound by loads (one
// vector load per multiply-add), which left groups of 12 (MQA, MLKV) and prompt chunks
// compute-bound at a fraction of the core's multiply-add rate.
constexpr int64_t kQueryTile = 4;

// scores[v * score_stride + t] = scale * sum_i q[v][i] * keys[i][t] for kQueryTile query vectors
// (rows of q, d apart) and t < n, the block width known at compile time as in ScoreBlockFixed.
template <int64_t kBlockSize>
void ScoreQueryTileFixed(const float* q, const float* keys, int64_t n, int64_t d, float scale,
                         float* scores, int64_t score_stride) {
  float sum[kQueryTile][kBlockSize] = {};
  for (int64_t i = 0; i < d; ++i) {
    const float* k = keys + i * kBlockSize;
    for (int64_t v = 0; v < kQueryTile; ++v) {
      const float qi = q[v * d + i];
#pragma omp simd
      for (int64_t t = 0; t < kBlockSize; ++t) sum[v][t] += qi * k[t];
    }
  }
  for (int64_t v = 0; v < kQueryTile; ++v) {
    for (int64_t t = 0; t < n; ++t) scores[v * score_stride + t] = sum[v][t] * scale;
  }
}

// Scores of `count` query vectors (rows of q) against one block's keys, vector v's at
// scores + v * score_stride: kQueryTile vectors at a time where the block width is one the tile
// is built for, the rest one by one.
void ScoreQueries(const float* q, const float* keys, int64_t block_size, int64_t n, int64_t d,
                  int64_t count, float scale, float* scores, int64_t score_stride) {
  int64_t v = 0;
  for (; v + kQueryTile <= count && (block_size == 16 || block_size == 32); v += kQueryTile) {
    if (block_size == 16) {
      ScoreQueryTileFixed<16>(q + v * d, keys, n, d, scale, scores + v * score_stride,
                              score_stride);
    } else {
      ScoreQueryTileFixed<32>(q + v * d, keys, n, d, scale, scores + v * score_stride,
                              score_stride);
    }
  }
  for (; v < count; ++v) {
    ScoreBlock(q + v * d, keys, block_size, n, d, scale, scores + v * score_stride);
  }
}

// acc[v][i] += sum_t p[v * p_stride + t] * values[t][i] for kQueryTile vectors (rows of acc) and
// i < kHeadDim, a chunk of dims at a time so that the tile's running sums stay in registers.
template <int64_t kHeadDim>
void AccumulateQueryTileFixed(const float* p, int64_t p_stride, const float* values, int64_t n,
                              float* acc) {
  constexpr int64_t kChunk = 32;
  static_assert(kHeadDim % kChunk == 0);
  for (int64_t c = 0; c < kHeadDim; c += kChunk) {
    float sum[kQueryTile][kChunk];
    for (int64_t v = 0; v < kQueryTile; ++v) {
      std::copy(acc + v * kHeadDim + c, acc + v * kHeadDim + c + kChunk, sum[v]);
    }
    for (int64_t t = 0; t < n; ++t) {
      const float* row = values + t * kHeadDim + c;
      for (int64_t v = 0; v < kQueryTile; ++v) {
        const float pt = p[v * p_stride + t];
#pragma omp simd
        for (int64_t i = 0; i < kChunk; ++i) sum[v][i] += pt * row[i];
      }
    }
    for (int64_t v = 0; v < kQueryTile; ++v) {
      std::copy(sum[v], sum[v] + kChunk, acc + v * kHeadDim + c);
    }
  }
}

// One block's values weighted by `count` query vectors' probabilities (vector v's at
// p + v * p_stride) onto their accumulators (rows of acc): kQueryTile vectors at a time for the
// head dims the tile is built for, the rest one by one.
void AccumulateQueries(const float* p, int64_t p_stride, const float* values, int64_t n, int64_t d,
                       int64_t count, float* acc) {
  int64_t v = 0;
  for (; v + kQueryTile <= count && (d == 64 || d == 128); v += kQueryTile) {
    if (d == 64) {
      AccumulateQueryTileFixed<64>(p + v * p_stride, p_stride, values, n, acc + v * d);
    } else {
      AccumulateQueryTileFixed<128>(p + v * p_stride, p_stride, values, n, acc + v * d);
    }
  }
  for (; v < count; ++v) AccumulateBlock(p + v * p_stride, values, n, d, acc + v * d);
}

// Per-thread scratch, reused across work items. Query vectors are numbered (KV head of the item,
// row of the item, query head of the group), so that those reading one KV head are adjacent.
struct Scratch {
  std::vector<float> q;       // [query vector][head_dim]
  std::vector<float> scores;  // [query vector][the item's longest context]
  std::vector<float> block;   // one (block, head) of keys or values as float32
  std::vector<float> acc;     // [query vector][head_dim]
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

// A work item: consecutive rows of one sequence (a decode row, or up to kRowTile rows of a prompt
// chunk) and a run of KV heads.
struct AttentionItem {
  int64_t first_row = 0, num_rows = 0;
  int64_t kv_begin = 0, kv_count = 0;
  const int32_t* block_table = nullptr;
};
constexpr int64_t kRowTile = 4;

// Attention of the item's rows for the query heads that read its KV heads (each KV head's `group`
// query heads are adjacent in q and out). Blocks are the outer loop and KV heads the inner one,
// so the item streams each block's slabs of those heads, which lie side by side; every row of the
// item reads each block once with all its heads. Rows see different numbers of tokens (row r
// attends to positions[r] + 1): scores are computed up to the item's longest context, but a row's
// softmax and weighted sum cover its own tokens only, so that a later token's values (even
// non-finite ones, such as an f16 cache's overflow) never reach an earlier row.
void AttendItem(const float* q, const AttentionItem& item, int64_t group, int64_t row_elems,
                const StepBatchView& batch, const KvCacheView& cache, const RotaryView& rotary,
                const AttentionParams& params, Scratch& s, float* out) {
  const int64_t d = cache.head_dim, bs = cache.block_size;
  const int64_t per_kv = item.num_rows * group;  // query vectors that read one KV head
  const int64_t count = item.kv_count * per_kv;
  const auto own_context = [&](int64_t r) -> int64_t {
    return batch.positions[item.first_row + r] + 1;
  };
  int64_t context = 0, shortest = std::numeric_limits<int64_t>::max();
  for (int64_t r = 0; r < item.num_rows; ++r) {
    context = std::max(context, own_context(r));
    shortest = std::min(shortest, own_context(r));
  }
  const auto vector_of = [&](int64_t j, int64_t r) { return (j * item.num_rows + r) * group; };
  s.q.resize(count * d);
  for (int64_t j = 0; j < item.kv_count; ++j) {
    for (int64_t r = 0; r < item.num_rows; ++r) {
      std::memcpy(s.q.data() + vector_of(j, r) * d,
                  q + (item.first_row + r) * row_elems + (item.kv_begin + j) * group * d,
                  sizeof(float) * group * d);
    }
  }
  s.scores.resize(count * context);
  s.block.resize(bs * d);
  s.acc.assign(count * d, 0.0f);
  ForEachCachedBlock(
      cache, item.block_table, context, [&](int64_t first, int64_t n, int64_t block) {
        for (int64_t j = 0; j < item.kv_count; ++j) {
          const float* keys = BlockAsFloat(
              cache, cache.k_cache, BlockOffset(cache, block, item.kv_begin + j), s.block.data());
          if (params.rotate_keys_on_read) {
            if (keys != s.block.data()) std::memcpy(s.block.data(), keys, sizeof(float) * bs * d);
            RotateKeyColumns(s.block.data(), bs, first, n, rotary);
            keys = s.block.data();
          }
          ScoreQueries(s.q.data() + j * per_kv * d, keys, bs, n, d, per_kv, params.scale,
                       s.scores.data() + j * per_kv * context + first, context);
        }
      });
  // Softmax in float32 with the maximum subtracted (every term is in (0, 1], so a float sum loses
  // at most a few ulps even over long contexts), over each row's own tokens.
  for (int64_t j = 0; j < item.kv_count; ++j) {
    for (int64_t r = 0; r < item.num_rows; ++r) {
      const int64_t own = own_context(r);
      for (int64_t h = 0; h < group; ++h) {
        float* p = s.scores.data() + (vector_of(j, r) + h) * context;
        const float max = *std::max_element(p, p + own);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t t = 0; t < own; ++t) {
          p[t] = FastExp(p[t] - max);
          sum += p[t];
        }
        const float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t t = 0; t < own; ++t) p[t] *= inv;
      }
    }
  }
  ForEachCachedBlock(
      cache, item.block_table, context, [&](int64_t first, int64_t n, int64_t block) {
        for (int64_t j = 0; j < item.kv_count; ++j) {
          const float* values = BlockAsFloat(
              cache, cache.v_cache, BlockOffset(cache, block, item.kv_begin + j), s.block.data());
          if (first + n <= shortest) {  // a block every row attends to in full: all rows together
            AccumulateQueries(s.scores.data() + j * per_kv * context + first, context, values, n, d,
                              per_kv, s.acc.data() + j * per_kv * d);
            continue;
          }
          for (int64_t r = 0; r < item.num_rows; ++r) {
            const int64_t own_n = std::clamp<int64_t>(own_context(r) - first, 0, n);
            if (own_n == 0) continue;
            AccumulateQueries(s.scores.data() + vector_of(j, r) * context + first, context, values,
                              own_n, d, group, s.acc.data() + vector_of(j, r) * d);
          }
        }
      });
  for (int64_t j = 0; j < item.kv_count; ++j) {
    for (int64_t r = 0; r < item.num_rows; ++r) {
      std::memcpy(out + (item.first_row + r) * row_elems + (item.kv_begin + j) * group * d,
                  s.acc.data() + vector_of(j, r) * d, sizeof(float) * group * d);
    }
  }
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
  // Row tiles: up to kRowTile consecutive rows of one sequence, which read the same blocks.
  struct RowTile {
    int64_t first_row, num_rows, seq;
  };
  std::vector<RowTile> tiles;
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    for (int64_t r = batch.query_start[s]; r < batch.query_start[s + 1]; r += kRowTile) {
      tiles.push_back({r, std::min<int64_t>(kRowTile, batch.query_start[s + 1] - r), s});
    }
  }
  // Work items are (row tile, run of KV heads): all KV heads when there are enough tiles to keep
  // every thread busy (each item then streams whole blocks), single heads when tiles are few
  // (decode at batch 1).
  const int64_t num_tiles = static_cast<int64_t>(tiles.size());
  const int64_t threads = omp_get_max_threads();
  const int64_t heads_per_item =
      std::clamp<int64_t>(num_tiles * cache.num_kv_heads / (4 * threads), 1, cache.num_kv_heads);
  const int64_t chunks = (cache.num_kv_heads + heads_per_item - 1) / heads_per_item;
  const int64_t items = num_tiles * chunks;
#pragma omp parallel
  {
    Scratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) {
      const RowTile& tile = tiles[i / chunks];
      AttentionItem item;
      item.first_row = tile.first_row;
      item.num_rows = tile.num_rows;
      item.kv_begin = (i % chunks) * heads_per_item;
      item.kv_count = std::min(heads_per_item, cache.num_kv_heads - item.kv_begin);
      item.block_table = batch.block_tables + tile.seq * batch.max_blocks_per_seq;
      AttendItem(q, item, group, row_elems, batch, cache, rotary, params, scratch, out);
    }
  }
}

}  // namespace mlkv::cpu
