// The tensor-core paged-attention kernel: the same causal attention over a sharing group's paged
// cache as paged_attention.cu, for f16/bf16 caches, with q.k and p.v on mma.sync (m16n8k16,
// float32 accumulators) in the manner of FlashAttention-2: scores, softmax state and outputs stay
// in registers, and shared memory holds only 16-bit tiles that each feed a whole tile of query
// vectors.
//
// Query vectors. A thread block serves a run of up to rows_per_block consecutive rows of one
// sequence and one KV head: vector v is (row + v / group, query head kv_head * group + v % group),
// so every query head that reads the KV head shares each load of a key and a value. The grid is
// (run, KV head, split).
//   - prompt chunks (rows_per_block = 64 / group): each sequence's rows cut into runs from its
//     first row, numbered sequence by sequence (FindRun; AttentionPlan::row_blocks bounds their
//     count); 64 vectors, warp w holds vectors
//     16w..16w+15 (one mma row tile) and scores every token of each tile;
//   - decode steps (rows_per_block = 1): one run per row; one row's group (<= 16 vectors) in every
//     warp, and warp w scores tokens 16w..16w+15 of each tile; the four partial softmaxes are
//     merged at the end.
//
// Per tile of 64 cached tokens:
//   1. K and V rows -> shared memory with cp.async (16 bytes each, no registers), tokens past the
//      block's context zero-filled (unused slots are never read, so a NaN there cannot reach
//      the output through 0 * NaN); keys rotated in float32 and rounded back when the layer
//      attends to rotated keys but the cache holds unrotated ones.
//   2. scores = q . k on the tensor cores; q was scaled by scale * log2(e) and rounded to the
//      cache's dtype once, so the softmax can use exp2.
//   3. causal mask (token > the vector's position), online softmax per vector in float32.
//   4. out += p . v, with p rounded to the cache's dtype: the score accumulators of two 8-token
//      tiles are exactly the A operand of the next mma (the layouts in PTX ISA, "Matrix Fragments
//      for mma.m16n8k16").
//
// Fragment coordinates: lane = 4 * gid + tig. A (16 x 16, row-major) register i holds rows gid
// (i even) or gid + 8 (i odd), columns 2 tig, 2 tig + 1 (+ 8 for i >= 2); B (16 x 8) registers
// hold rows 2 tig, 2 tig + 1 (+ 8 for the second), column gid; C (16 x 8) holds rows gid (c0, c1)
// and gid + 8 (c2, c3), columns 2 tig, 2 tig + 1.
//
// Splits write the same partial results as the SIMT kernel, merged by attention_launch.cu.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/attention_args.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_layout.h"

namespace mlkv::cuda {
namespace {

constexpr int kThreads = kTensorCoreThreads;
constexpr int kWarps = kThreads / 32;
constexpr int kVectors = kTensorCoreVectors;
constexpr int kTile = kTensorCoreTile;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
static_assert(kVectors == 16 * kWarps, "prompt chunks: one 16-vector mma tile per warp");
static_assert(kTile == 16 * kWarps, "decode: one 16-token mma step per warp and tile");

// The 32 bits of a pair of 16-bit elements (__half2, __nv_bfloat162), as mma operands take them.
template <typename Pair>
__device__ inline uint32_t PairBits(const Pair& pair) {
  static_assert(sizeof(Pair) == sizeof(uint32_t));
  uint32_t bits;
  memcpy(&bits, &pair, sizeof bits);
  return bits;
}

// The 16-bit element types: conversions and the mma instruction.
template <typename T>
struct Element;

template <>
struct Element<__half> {
  __device__ static float ToFloat(__half x) { return __half2float(x); }
  __device__ static __half FromFloat(float x) { return __float2half_rn(x); }
  __device__ static uint16_t Bits(__half x) { return __half_as_ushort(x); }
  __device__ static uint32_t Pack(float lo, float hi) {
    return PairBits(__floats2half2_rn(lo, hi));
  }
  // c += a b.
  __device__ static void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct Element<__nv_bfloat16> {
  __device__ static float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ static __nv_bfloat16 FromFloat(float x) { return __float2bfloat16_rn(x); }
  __device__ static uint16_t Bits(__nv_bfloat16 x) { return __bfloat16_as_ushort(x); }
  __device__ static uint32_t Pack(float lo, float hi) {
    return PairBits(__floats2bfloat162_rn(lo, hi));
  }
  __device__ static void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// Two adjacent 16-bit elements (the lower address in the low half), as mma operands hold them.
template <typename T>
__device__ inline uint32_t LoadPair(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

// 16 bytes from global to shared memory without passing through registers; zeros when !valid.
__device__ inline void CopyAsync16(void* smem_dst, const void* global_src, bool valid) {
  const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(global_src),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ inline void CopyAsyncWaitAll() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// The sequence and first row of run `run` (runs numbered sequence by sequence, ceil(rows /
// rows_per_block) for each); both left as they are past the last run. Called by one warp: 32
// sequences at a time, a lane each, with a scan of their run counts (32-bit: the counts are int32
// rows).
__device__ void FindRun(const AttentionArgs& a, int run, int& seq, int& first_row) {
  const int lane = threadIdx.x % 32;
  const int per_run = static_cast<int>(a.rows_per_block);
  const int num_seqs = static_cast<int>(a.num_seqs);
  int runs_before = 0;  // in the sequences of earlier rounds
  for (int base = 0; base < num_seqs; base += 32) {
    const int s = base + lane;
    const int rows = s < num_seqs ? a.query_start[s + 1] - a.query_start[s] : 0;
    const int runs = (rows + per_run - 1) / per_run;
    int inclusive = runs;  // runs of sequences base..s
#pragma unroll
    for (int offset = 1; offset < 32; offset *= 2) {
      const int below = __shfl_up_sync(0xffffffffu, inclusive, offset);
      if (lane >= offset) inclusive += below;
    }
    const int round_runs = __shfl_sync(0xffffffffu, inclusive, 31);
    if (run < runs_before + round_runs) {
      // The first lane whose sequences reach past `run` owns it.
      const int owner = __ffs(__ballot_sync(0xffffffffu, runs_before + inclusive > run)) - 1;
      const int owner_before = __shfl_sync(0xffffffffu, inclusive - runs, owner);
      seq = base + owner;
      first_row = a.query_start[seq] + (run - runs_before - owner_before) * per_run;
      return;
    }
    runs_before += round_runs;
  }
}

template <typename T, int kD, bool kDecode>
__global__ void __launch_bounds__(kThreads) TensorCoreAttentionKernel(const AttentionArgs a) {
  using E = Element<T>;
  constexpr int kStride = kD + 8;    // elements per staged row; see TensorCoreSmemBytes
  constexpr int kChunks = kD / 16;   // k steps of q . k
  constexpr int kDimTiles = kD / 8;  // 8-wide column tiles of the output
  constexpr int kUnits = kD / 8;     // 16-byte units per cached row
  constexpr int kWarpTokens = kDecode ? kTile / kWarps : kTile;  // tokens a warp scores per tile
  constexpr int kScoreTiles = kWarpTokens / 8;
  constexpr int kStagedVectors = kDecode ? 16 : kVectors;

  extern __shared__ __align__(16) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem);
  T* ks = qs + kVectors * kStride;
  T* vs = ks + kTile * kStride;
  int* limit_s = reinterpret_cast<int*>(vs + kTile * kStride);  // [vector] tokens it may read
  float* ml_s = reinterpret_cast<float*>(limit_s + kVectors);   // [warp][16][max, sum]
  // After the last tile: each warp's unnormalised outputs [warp][16][kD], over K and V.
  float* out_s = reinterpret_cast<float*>(ks);

  const int64_t kv_head = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int gid = lane / 4, tig = lane % 4;
  int64_t seq, row;  // the run's first row
  if (kDecode) {
    row = blockIdx.x;
    seq = SequenceOfRow(a.query_start, a.num_seqs, row);
  } else {
    __shared__ int run_seq, run_row;  // -1: past the last run (the grid is an upper bound)
    if (warp == 0) {
      int found_seq = -1, found_row = 0;
      FindRun(a, static_cast<int>(blockIdx.x), found_seq, found_row);
      if (lane == 0) {
        run_seq = found_seq;
        run_row = found_row;
      }
    }
    __syncthreads();
    if (run_seq < 0) return;
    seq = run_seq;
    row = run_row;
  }
  const int64_t seq_rows_left = a.query_start[seq + 1] - row;
  const int rows =
      static_cast<int>(seq_rows_left < a.rows_per_block ? seq_rows_left : a.rows_per_block);
  const int g = static_cast<int>(a.group);
  const int num_vectors = rows * g;

  for (int v = tid; v < kVectors; v += kThreads) {
    limit_s[v] = v < num_vectors ? a.positions[row + v / g] + 1 : 0;
  }
  const float q_scale = a.scale * kLog2e;
  for (int idx = tid; idx < kStagedVectors * kD; idx += kThreads) {
    const int v = idx / kD, c = idx % kD;
    float x = 0.0f;
    if (v < num_vectors) {
      x = a.q[((row + v / g) * a.num_heads + kv_head * g + v % g) * kD + c] * q_scale;
    }
    qs[v * kStride + c] = E::FromFloat(x);
  }
  __syncthreads();

  int64_t context = 0;  // the block's last row reads the most tokens, but take no order on trust
  for (int r = 0; r < rows; ++r) context = max(context, static_cast<int64_t>(limit_s[r * g]));
  const int64_t begin = split * a.split_tokens;
  const int64_t end = min(context, begin + a.split_tokens);

  const int q_tile = kDecode ? 0 : warp;                      // the warp's 16 vectors
  const int token_offset = kDecode ? warp * kWarpTokens : 0;  // its tokens within a tile
  const bool has_vectors = q_tile * 16 < num_vectors;
  // This lane's two vectors (mma rows gid and gid + 8) read tokens below these limits.
  const int64_t limit0 = min(static_cast<int64_t>(limit_s[q_tile * 16 + gid]), end);
  const int64_t limit1 = min(static_cast<int64_t>(limit_s[q_tile * 16 + gid + 8]), end);

  uint32_t qa[kChunks][4];
  {
    const T* q_rows = qs + (q_tile * 16 + gid) * kStride + 2 * tig;
#pragma unroll
    for (int kc = 0; kc < kChunks; ++kc) {
      qa[kc][0] = LoadPair(q_rows + kc * 16);
      qa[kc][1] = LoadPair(q_rows + 8 * kStride + kc * 16);
      qa[kc][2] = LoadPair(q_rows + kc * 16 + 8);
      qa[kc][3] = LoadPair(q_rows + 8 * kStride + kc * 16 + 8);
    }
  }
  float o[kDimTiles][4];
#pragma unroll
  for (int dn = 0; dn < kDimTiles; ++dn) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY;  // running max (log2 units) of vectors gid, gid + 8
  float l0 = 0.0f, l1 = 0.0f;            // this lane's share of their sums of exp2(s - m)

  const T* k_pool = static_cast<const T*>(a.k_cache);
  const T* v_pool = static_cast<const T*>(a.v_cache);
  const int32_t* block_table = a.block_tables + seq * a.max_blocks_per_seq;
  for (int64_t tile_start = begin; tile_start < end; tile_start += kTile) {
    // 1. Stage the tile.
    for (int idx = tid; idx < kTile * kUnits; idx += kThreads) {
      const int t = idx / kUnits, u = idx % kUnits;
      const int64_t token = tile_start + t;
      const bool valid = token < end;
      int64_t offset = 0;  // a valid address even when nothing is read
      if (valid) {
        offset = KvRowOffset(block_table[token / a.block_size], kv_head, token % a.block_size,
                             a.num_kv_heads, a.block_size, kD) +
                 u * 8;
      }
      CopyAsync16(ks + t * kStride + u * 8, k_pool + offset, valid);
      CopyAsync16(vs + t * kStride + u * 8, v_pool + offset, valid);
    }
    CopyAsyncWaitAll();
    __syncthreads();
    if (a.rotate_keys) {
      const int half = static_cast<int>(a.rotary_dims / 2);
      const int valid = static_cast<int>(min(static_cast<int64_t>(kTile), end - tile_start));
      for (int idx = tid; idx < valid * half; idx += kThreads) {
        const int t = idx / half, i = idx % half;
        const float* cs = a.cos_sin + (tile_start + t) * a.rotary_dims + 2 * i;
        T* key = ks + t * kStride;
        const float x = E::ToFloat(key[i]), y = E::ToFloat(key[i + half]);
        key[i] = E::FromFloat(x * cs[0] - y * cs[1]);
        key[i + half] = E::FromFloat(y * cs[0] + x * cs[1]);
      }
      __syncthreads();
    }

    if (has_vectors) {
      // 2. Scores of this warp's vectors and tokens.
      float s[kScoreTiles][4];
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        const T* key = ks + (token_offset + nt * 8 + gid) * kStride + 2 * tig;
#pragma unroll
        for (int kc = 0; kc < kChunks; ++kc) {
          E::Mma(s[nt], qa[kc], LoadPair(key + kc * 16), LoadPair(key + kc * 16 + 8));
        }
      }
      // 3. Causal mask and online softmax. Each row's max is reduced over the 4 lanes that hold
      //    it (same gid); its sum stays per lane until the end.
      float max0 = -INFINITY, max1 = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt) {
        const int64_t t0 = tile_start + token_offset + nt * 8 + 2 * tig;
        if (t0 >= limit0) s[nt][0] = -INFINITY;
        if (t0 + 1 >= limit0) s[nt][1] = -INFINITY;
        if (t0 >= limit1) s[nt][2] = -INFINITY;
        if (t0 + 1 >= limit1) s[nt][3] = -INFINITY;
        max0 = fmaxf(max0, fmaxf(s[nt][0], s[nt][1]));
        max1 = fmaxf(max1, fmaxf(s[nt][2], s[nt][3]));
      }
#pragma unroll
      for (int offset = 1; offset < 4; offset *= 2) {
        max0 = fmaxf(max0, __shfl_xor_sync(0xffffffffu, max0, offset));
        max1 = fmaxf(max1, __shfl_xor_sync(0xffffffffu, max1, offset));
      }
      const float new0 = fmaxf(m0, max0), new1 = fmaxf(m1, max1);
      // A vector with no readable token so far keeps zero weights: subtract 0, not -inf - -inf.
      const float base0 = new0 == -INFINITY ? 0.0f : new0;
      const float base1 = new1 == -INFINITY ? 0.0f : new1;
      const float alpha0 = exp2f(m0 - base0), alpha1 = exp2f(m1 - base1);  // 0 while m = -inf
      m0 = new0;
      m1 = new1;
      float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kScoreTiles; ++nt) {
        s[nt][0] = exp2f(s[nt][0] - base0);
        s[nt][1] = exp2f(s[nt][1] - base0);
        s[nt][2] = exp2f(s[nt][2] - base1);
        s[nt][3] = exp2f(s[nt][3] - base1);
        sum0 += s[nt][0] + s[nt][1];
        sum1 += s[nt][2] + s[nt][3];
      }
      l0 = l0 * alpha0 + sum0;
      l1 = l1 * alpha1 + sum1;
#pragma unroll
      for (int dn = 0; dn < kDimTiles; ++dn) {
        o[dn][0] *= alpha0;
        o[dn][1] *= alpha0;
        o[dn][2] *= alpha1;
        o[dn][3] *= alpha1;
      }
      // 4. out += p . v over 16 tokens at a time: score tiles 2j and 2j + 1 form the A operand.
#pragma unroll
      for (int j = 0; j < kScoreTiles / 2; ++j) {
        const uint32_t p[4] = {E::Pack(s[2 * j][0], s[2 * j][1]), E::Pack(s[2 * j][2], s[2 * j][3]),
                               E::Pack(s[2 * j + 1][0], s[2 * j + 1][1]),
                               E::Pack(s[2 * j + 1][2], s[2 * j + 1][3])};
        const T* value = vs + (token_offset + j * 16 + 2 * tig) * kStride + gid;
#pragma unroll
        for (int dn = 0; dn < kDimTiles; ++dn) {
          const T* column = value + dn * 8;  // tokens 2 tig, 2 tig + 1, then 8 further
          const uint32_t b0 = E::Bits(column[0]) | uint32_t{E::Bits(column[kStride])} << 16;
          const uint32_t b1 = E::Bits(column[8 * kStride]) | uint32_t{E::Bits(column[9 * kStride])}
                                                                 << 16;
          E::Mma(o[dn], p, b0, b1);
        }
      }
    }
    __syncthreads();  // the next tile overwrites K and V
  }

  // Each warp's state to shared memory; then each output element combines the warps that hold
  // its vector (decode: all four, each over a quarter of every tile; prompt chunks: one).
#pragma unroll
  for (int offset = 1; offset < 4; offset *= 2) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, offset);
    l1 += __shfl_xor_sync(0xffffffffu, l1, offset);
  }
  if (has_vectors) {
    float* mine = out_s + warp * 16 * kD;
#pragma unroll
    for (int dn = 0; dn < kDimTiles; ++dn) {
      const int c = dn * 8 + 2 * tig;
      mine[gid * kD + c] = o[dn][0];
      mine[gid * kD + c + 1] = o[dn][1];
      mine[(gid + 8) * kD + c] = o[dn][2];
      mine[(gid + 8) * kD + c + 1] = o[dn][3];
    }
    if (tig == 0) {
      ml_s[2 * (warp * 16 + gid)] = m0;
      ml_s[2 * (warp * 16 + gid) + 1] = l0;
      ml_s[2 * (warp * 16 + gid + 8)] = m1;
      ml_s[2 * (warp * 16 + gid + 8) + 1] = l1;
    }
  }
  __syncthreads();
  constexpr int kParts = kDecode ? kWarps : 1;
  for (int idx = tid; idx < num_vectors * kD; idx += kThreads) {
    const int v = idx / kD, c = idx % kD;
    const int first_warp = kDecode ? 0 : v / 16, r = v % 16;
    float m = -INFINITY;
#pragma unroll
    for (int part = 0; part < kParts; ++part) {
      m = fmaxf(m, ml_s[2 * ((first_warp + part) * 16 + r)]);
    }
    float sum = 0.0f, acc = 0.0f;
    if (m != -INFINITY) {  // else no token was readable: an empty split
#pragma unroll
      for (int part = 0; part < kParts; ++part) {
        const int slot = (first_warp + part) * 16 + r;
        const float weight = exp2f(ml_s[2 * slot] - m);  // 0 for a part with no token
        sum += weight * ml_s[2 * slot + 1];
        acc += weight * out_s[slot * kD + c];
      }
    }
    const float value = sum > 0.0f ? acc / sum : 0.0f;
    const int64_t out_row = row + v / g, head = kv_head * g + v % g;
    if (a.num_splits == 1) {
      a.out[(out_row * a.num_heads + head) * kD + c] = value;
    } else {
      const int64_t rh = (split * a.num_tokens + out_row) * a.num_heads + head;
      a.partial_out[rh * kD + c] = value;
      if (c == 0) {
        a.partial_ml[2 * rh] = m * kLn2;  // natural-log units, as the merge expects
        a.partial_ml[2 * rh + 1] = sum;   // sum of exp2(s - m) = exp(s' - m') in those units
      }
    }
  }
}

template <typename T, int kD>
void LaunchForHeadDim(const AttentionArgs& args, const AttentionPlan& plan, cudaStream_t stream) {
  // rows_per_block is 1 only for decode steps (prompt chunks take 64 / group >= 4 rows).
  const auto kernel = plan.rows_per_block == 1 ? TensorCoreAttentionKernel<T, kD, true>
                                               : TensorCoreAttentionKernel<T, kD, false>;
  AllowSharedMemory(kernel, plan.smem_bytes);  // head dims above 96
  const dim3 grid(static_cast<unsigned>(plan.row_blocks), static_cast<unsigned>(args.num_kv_heads),
                  static_cast<unsigned>(plan.num_splits));
  kernel<<<grid, kThreads, plan.smem_bytes, stream>>>(args);
  MLKV_CUDA_CHECK_LAUNCH();
}

// One instantiation per entry of kTensorCoreHeadDims.
template <typename T>
void LaunchForElement(const AttentionArgs& args, const AttentionPlan& plan, cudaStream_t stream) {
  switch (args.head_dim) {
    case 64:
      return LaunchForHeadDim<T, 64>(args, plan, stream);
    case 80:
      return LaunchForHeadDim<T, 80>(args, plan, stream);
    case 96:
      return LaunchForHeadDim<T, 96>(args, plan, stream);
    case 128:
      return LaunchForHeadDim<T, 128>(args, plan, stream);
    default:
      CudaFatal(__FILE__, __LINE__, "LaunchTensorCoreAttention",
                "head_dim outside kTensorCoreHeadDims (the planner should have chosen SIMT)");
  }
}

}  // namespace

void LaunchTensorCoreAttention(const AttentionArgs& args, const AttentionPlan& plan, DType dtype,
                               cudaStream_t stream) {
  switch (dtype) {
    case DType::kF16:
      return LaunchForElement<__half>(args, plan, stream);
    case DType::kBF16:
      return LaunchForElement<__nv_bfloat16>(args, plan, stream);
    case DType::kF32:
      break;
  }
  CudaFatal(__FILE__, __LINE__, "LaunchTensorCoreAttention",
            "a float32 cache (the planner should have chosen SIMT)");
}

}  // namespace mlkv::cuda
