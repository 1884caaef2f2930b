// The SIMT paged-attention kernel: causal attention over one sharing group's paged KV cache
// (layout in kv_layout.h) for decode rows and prompt chunks alike, in float32 arithmetic: every
// row attends to its sequence's tokens 0..position. It serves every shape CheckAttentionShape
// accepts; paged_attention_mma.cu serves f16/bf16 caches on tensor cores when asked to.
//
// Grid: (row, KV head, split). One thread block serves all `group` query heads that read one KV
// head, so each cached key and value is loaded from memory once per group (MQA/MLKV groups of
// 12 make this the difference between reading the cache once and twelve times). Per tile of 32
// cached tokens:
//
//   1. K and V rows -> shared memory as float32 (16-byte loads; f16/bf16 widened on the way), keys
//      rotated in place when the layer attends to rotated keys but the cache holds unrotated ones
//   2. scores[h][t] = q_h . k_t * scale     lane = token t, warp = every 4th head h
//   3. online softmax per head (float32): running max m and sum l, rescale factor alpha
//   4. acc[h][dims] = acc * alpha + sum_t p[h][t] v_t   thread = (head, 4 dims), all tile tokens
//
// Shared memory, in floats (stride: see attention_plan.cc, chosen so a warp reading one column of
// the tile hits 32 different banks):
//
//   q [group][d] | K [32][stride] | V [32][stride] | p [group][32] | m, l, alpha [group] | int64
//   row offsets [32]
//
// When a step has too few (row, KV head) pairs to fill the GPU, the context is cut into splits
// (blockIdx.z); each writes its normalised partial output with its max and sum, which
// attention_launch.cu merges.
//
// Unused slots of a block are never loaded (a NaN there cannot leak in through 0 * NaN).
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_args.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/kv_layout.h"
#include "kernels/cuda/reduce.cuh"

namespace mlkv::cuda {
namespace {

constexpr int kThreads = kAttentionThreads;
constexpr int kTile = kAttentionTile;
constexpr int kWarps = kThreads / 32;
constexpr int kHeadsPerWarp = kMaxGroupSize / kWarps;  // score phase: heads per thread
static_assert(kTile == 32, "the softmax phase maps one tile token to each lane of a warp");

// Loads one unit of a cache row (kElems elements) and stores it as float32 in shared memory.
// Vector units are 16 bytes: 4 floats or 8 f16/bf16. bf16 (uint16_t here) is the upper half of a
// float32; f16 (__half) converts in hardware.
template <typename T, bool kVec>
struct CacheUnit;

template <>
struct CacheUnit<float, true> {
  static constexpr int kElems = 4;
  __device__ static void Stage(const float* src, float* dst) {
    *reinterpret_cast<float4*>(dst) = __ldg(reinterpret_cast<const float4*>(src));
  }
};

template <>
struct CacheUnit<uint16_t, true> {
  static constexpr int kElems = 8;
  __device__ static void Stage(const uint16_t* src, float* dst) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    float4* out = reinterpret_cast<float4*>(dst);
    // Little endian: element 2i is the low half of word i.
    out[0] = make_float4(__uint_as_float(words[0] << 16), __uint_as_float(words[0] & 0xffff0000u),
                         __uint_as_float(words[1] << 16), __uint_as_float(words[1] & 0xffff0000u));
    out[1] = make_float4(__uint_as_float(words[2] << 16), __uint_as_float(words[2] & 0xffff0000u),
                         __uint_as_float(words[3] << 16), __uint_as_float(words[3] & 0xffff0000u));
  }
};

template <>
struct CacheUnit<__half, true> {
  static constexpr int kElems = 8;
  __device__ static void Stage(const __half* src, float* dst) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
    const __half2* pairs = reinterpret_cast<const __half2*>(&raw);
    float2* out = reinterpret_cast<float2*>(dst);
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = __half22float2(pairs[i]);
  }
};

template <>
struct CacheUnit<float, false> {
  static constexpr int kElems = 1;
  __device__ static void Stage(const float* src, float* dst) { *dst = __ldg(src); }
};

template <>
struct CacheUnit<uint16_t, false> {
  static constexpr int kElems = 1;
  __device__ static void Stage(const uint16_t* src, float* dst) {
    *dst = __uint_as_float(static_cast<uint32_t>(__ldg(src)) << 16);
  }
};

template <>
struct CacheUnit<__half, false> {
  static constexpr int kElems = 1;
  __device__ static void Stage(const __half* src, float* dst) { *dst = __half2float(__ldg(src)); }
};

// kAccFloats: output accumulators per thread (AttentionPlan::accumulators).
template <typename T, bool kVec, int kAccFloats>
__global__ void __launch_bounds__(kThreads) PagedAttentionKernel(const AttentionArgs a) {
  using Unit = CacheUnit<T, kVec>;
  // Shared-memory reads of staged rows: float4 when vectorised, else single floats.
  constexpr int kW = kVec ? 4 : 1;
  constexpr int kAccUnits = kAccFloats / kW;

  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ int64_t seq_shared;
  const int64_t g = a.group, d = a.head_dim, stride = a.smem_stride;
  float* qs = reinterpret_cast<float*>(smem);
  float* ks = qs + g * d;
  float* vs = ks + kTile * stride;
  float* ps = vs + kTile * stride;
  float* m_s = ps + g * kTile;
  float* l_s = m_s + g;
  float* alpha_s = l_s + g;
  int64_t* row_offset = reinterpret_cast<int64_t*>(smem + a.row_offsets_byte);

  const int64_t row = blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t context = static_cast<int64_t>(a.positions[row]) + 1;
  const int64_t begin = split * a.split_tokens;
  const int64_t end = context < begin + a.split_tokens ? context : begin + a.split_tokens;

  if (tid == 0) seq_shared = SequenceOfRow(a.query_start, a.num_seqs, row);
  // The group's query heads are adjacent in q: heads kv_head * g .. kv_head * g + g - 1.
  const float* q_group = a.q + (row * a.num_heads + kv_head * g) * d;
  for (int64_t i = tid; i < g * d; i += kThreads) qs[i] = q_group[i] * a.scale;
  for (int64_t h = tid; h < g; h += kThreads) {
    m_s[h] = -INFINITY;
    l_s[h] = 0.0f;
  }
  __syncthreads();
  const int32_t* block_table = a.block_tables + seq_shared * a.max_blocks_per_seq;
  const T* k_pool = static_cast<const T*>(a.k_cache);
  const T* v_pool = static_cast<const T*>(a.v_cache);
  const int64_t units_per_head = d / kW;

  float acc[kAccFloats];
#pragma unroll
  for (int i = 0; i < kAccFloats; ++i) acc[i] = 0.0f;

  for (int64_t tile_start = begin; tile_start < end; tile_start += kTile) {
    const int n = static_cast<int>(end - tile_start < kTile ? end - tile_start : kTile);
    if (tid < n) {
      const int64_t token = tile_start + tid;
      const int64_t block = block_table[token / a.block_size];
      row_offset[tid] =
          KvRowOffset(block, kv_head, token % a.block_size, a.num_kv_heads, a.block_size, d);
    }
    __syncthreads();

    // 1. Stage the tile's keys and values (both issued before waiting, for more loads in flight).
    // Unrolled so that several iterations' loads are in flight before their shared stores.
    const int64_t units = d / Unit::kElems;
#pragma unroll 4
    for (int64_t idx = tid; idx < n * units; idx += kThreads) {
      const int64_t t = idx / units, e = (idx % units) * Unit::kElems;
      Unit::Stage(k_pool + row_offset[t] + e, ks + t * stride + e);
      Unit::Stage(v_pool + row_offset[t] + e, vs + t * stride + e);
    }
    __syncthreads();
    if (a.rotate_keys) {
      const int64_t half = a.rotary_dims / 2;
      for (int64_t idx = tid; idx < n * half; idx += kThreads) {
        const int64_t t = idx / half, i = idx % half;
        const float* cs = a.cos_sin + (tile_start + t) * a.rotary_dims + 2 * i;
        float* key = ks + t * stride;
        const float x = key[i], y = key[i + half];
        key[i] = x * cs[0] - y * cs[1];
        key[i + half] = y * cs[0] + x * cs[1];
      }
      __syncthreads();
    }

    // 2. Scores. A warp's lanes read one column of the tile (32 banks) and the same query
    //    element (a broadcast).
    {
      float dot[kHeadsPerWarp];
#pragma unroll
      for (int j = 0; j < kHeadsPerWarp; ++j) dot[j] = 0.0f;
      if (lane < n) {
        const float* key = ks + lane * stride;
        for (int64_t i = 0; i < d; i += kW) {
          if constexpr (kVec) {
            const float4 k4 = *reinterpret_cast<const float4*>(key + i);
#pragma unroll
            for (int j = 0; j < kHeadsPerWarp; ++j) {
              const int64_t h = warp + j * kWarps;
              if (h < g) {
                const float4 q4 = *reinterpret_cast<const float4*>(qs + h * d + i);
                dot[j] += q4.x * k4.x + q4.y * k4.y + q4.z * k4.z + q4.w * k4.w;
              }
            }
          } else {
            const float k1 = key[i];
#pragma unroll
            for (int j = 0; j < kHeadsPerWarp; ++j) {
              const int64_t h = warp + j * kWarps;
              if (h < g) dot[j] += qs[h * d + i] * k1;
            }
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kHeadsPerWarp; ++j) {
        const int64_t h = warp + j * kWarps;
        if (h < g) ps[h * kTile + lane] = lane < n ? dot[j] : -INFINITY;
      }
    }
    __syncthreads();

    // 3. Online softmax, one warp per head. Every tile holds at least one real token, so the new
    //    maximum is finite and exp(-inf - max) = 0 drops the empty lanes.
    for (int64_t h = warp; h < g; h += kWarps) {
      const float s = ps[h * kTile + lane];
      const float m_old = m_s[h];
      const float m_new = fmaxf(m_old, WarpMax(s));
      const float p = expf(s - m_new);
      const float sum = WarpSum(p);  // also orders every lane's read of m_s before the write
      ps[h * kTile + lane] = p;
      if (lane == 0) {
        const float alpha = expf(m_old - m_new);  // 0 on the first tile (m_old = -inf)
        alpha_s[h] = alpha;
        l_s[h] = l_s[h] * alpha + sum;
        m_s[h] = m_new;
      }
    }
    __syncthreads();

    // 4. Weighted values. Unit u = (head h, dims [c, c + kW)); consecutive threads take
    //    consecutive dims, so a warp reads contiguous shared memory.
#pragma unroll
    for (int k = 0; k < kAccUnits; ++k) {
      const int64_t u = tid + static_cast<int64_t>(k) * kThreads;
      if (u < g * units_per_head) {
        const int64_t h = u / units_per_head, c = (u % units_per_head) * kW;
        const float alpha = alpha_s[h];
        const float* p = ps + h * kTile;
        float* my = acc + k * kW;
#pragma unroll
        for (int w = 0; w < kW; ++w) my[w] *= alpha;
        for (int t = 0; t < n; ++t) {
          const float pt = p[t];
          if constexpr (kVec) {
            const float4 v4 = *reinterpret_cast<const float4*>(vs + t * stride + c);
            my[0] += pt * v4.x;
            my[1] += pt * v4.y;
            my[2] += pt * v4.z;
            my[3] += pt * v4.w;
          } else {
            my[0] += pt * vs[t * stride + c];
          }
        }
      }
    }
    __syncthreads();  // the next tile overwrites K, V, p and the row offsets
  }

  // Epilogue: the final output, or this split's partial result. l_s and m_s were last written
  // before a barrier. An empty split (begin >= context) leaves l = 0 and writes zeros.
#pragma unroll
  for (int k = 0; k < kAccUnits; ++k) {
    const int64_t u = tid + static_cast<int64_t>(k) * kThreads;
    if (u < g * units_per_head) {
      const int64_t h = u / units_per_head, c = (u % units_per_head) * kW;
      const int64_t head = kv_head * g + h;
      const float l = l_s[h];
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      float* dst;
      if (a.num_splits == 1) {
        dst = a.out + (row * a.num_heads + head) * d + c;
      } else {
        const int64_t rh = (split * a.num_tokens + row) * a.num_heads + head;
        dst = a.partial_out + rh * d + c;
        if (c == 0) {
          a.partial_ml[2 * rh] = m_s[h];
          a.partial_ml[2 * rh + 1] = l;
        }
      }
#pragma unroll
      for (int w = 0; w < kW; ++w) dst[w] = acc[k * kW + w] * inv;
    }
  }
}

template <typename T, bool kVec, int kAccFloats>
void LaunchKernel(const AttentionArgs& args, const AttentionPlan& plan, cudaStream_t stream) {
  const auto kernel = PagedAttentionKernel<T, kVec, kAccFloats>;
  AllowSharedMemory(kernel, plan.smem_bytes);  // head_dim > 128 at large groups
  const dim3 grid(static_cast<unsigned>(plan.row_blocks), static_cast<unsigned>(args.num_kv_heads),
                  static_cast<unsigned>(plan.num_splits));
  kernel<<<grid, kThreads, plan.smem_bytes, stream>>>(args);
  MLKV_CUDA_CHECK_LAUNCH();
}

template <typename T, int kAccFloats>
void LaunchForElement(const AttentionArgs& args, const AttentionPlan& plan, cudaStream_t stream) {
  if (plan.vectorized) {
    LaunchKernel<T, true, kAccFloats>(args, plan, stream);
  } else {
    LaunchKernel<T, false, kAccFloats>(args, plan, stream);
  }
}

// The cache's element type: float, __half (f16) or uint16_t (bf16, widened by a shift).
template <int kAccFloats>
void LaunchForDtype(const AttentionArgs& args, const AttentionPlan& plan, DType dtype,
                    cudaStream_t stream) {
  switch (dtype) {
    case DType::kF32:
      return LaunchForElement<float, kAccFloats>(args, plan, stream);
    case DType::kF16:
      return LaunchForElement<__half, kAccFloats>(args, plan, stream);
    case DType::kBF16:
      return LaunchForElement<uint16_t, kAccFloats>(args, plan, stream);
  }
}

}  // namespace

void LaunchSimtAttention(const AttentionArgs& args, const AttentionPlan& plan, DType dtype,
                         cudaStream_t stream) {
  if (plan.accumulators == kSmallAccumulators) {
    LaunchForDtype<kSmallAccumulators>(args, plan, dtype, stream);
  } else {
    LaunchForDtype<kMaxAccumulators>(args, plan, dtype, stream);
  }
}

}  // namespace mlkv::cuda
