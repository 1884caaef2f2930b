// Backend::SampleRows on the GPU: one thread block per row, each step a few passes over the row
// (200 KB for a 50k vocabulary, which stays in L2), with no scratch memory and no host
// synchronisation. The rule's rank order (kernels/backend.h) is a total order on one integer key
// per element, so "the first n in rank order" is "the keys >= t" for a single threshold t:
//   first pass: the ArgmaxRows answer (the reduction of argmax.cuh), which is the token of a
//               greedy row or of a row without a finite maximum and else the top key; and the
//               number of candidates;
//   top-k:      bisection for the largest t with top_k keys >= t (exactly top_k: keys are unique);
//   top-p:      the same bisection, on the mass of the keys >= t against top_p x total;
//   min-p:      a test per element;
//   the draw:   a block-wide prefix sum of the kept p in index order, tile by tile, carrying the
//               mass of the tiles before; the lowest index whose running sum passes the target.
// The p are recomputed where they are needed rather than stored, which would take a row of
// doubles of scratch per row; the bisection computes them only for the keys between its bounds.
#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cuda/functional>
#include <cuda/std/functional>

#include "common/philox.h"
#include "kernels/backend.h"
#include "kernels/cuda/argmax.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launchers.h"
#include "kernels/sample_weight.h"

namespace mlkv::cuda {
namespace {

constexpr int kSampleThreads = 1024;

template <typename T>
using BlockReduce = cub::BlockReduce<T, kSampleThreads>;
using BlockScan = cub::BlockScan<double, kSampleThreads>;

// A block's shared memory: the scratch of one collective at a time, and the slots through which
// thread 0 hands a cub reduction's result to the others.
struct SharedState {
  union {
    ArgmaxScratch argmax;
    BlockReduce<double>::TempStorage sum;
    BlockReduce<int64_t>::TempStorage index;
    BlockScan::TempStorage scan;
  } temp;
  double sum;
  int64_t index;
};

// The reduction of v over the block, returned to every thread. The barriers let the next
// collective reuse the scratch and the slot.
template <typename T, typename Op>
__device__ T ReduceToAll(T v, Op op, typename BlockReduce<T>::TempStorage& temp, T& slot) {
  const T reduced = BlockReduce<T>(temp).Reduce(v, op);
  if (threadIdx.x == 0) slot = reduced;
  __syncthreads();
  const T result = slot;
  __syncthreads();
  return result;
}

__device__ double BlockSum(double v, SharedState& shared) {
  return ReduceToAll(v, ::cuda::std::plus<>{}, shared.temp.sum, shared.sum);
}
__device__ int64_t BlockMinIndex(int64_t v, SharedState& shared) {
  return ReduceToAll(v, ::cuda::minimum<>{}, shared.temp.index, shared.index);
}
__device__ int64_t BlockMaxIndex(int64_t v, SharedState& shared) {
  return ReduceToAll(v, ::cuda::maximum<>{}, shared.temp.index, shared.index);
}

// The rank order as one integer, larger first: the logit's bits made monotone (negative floats
// flipped, positive ones above them) times cols, plus the index reversed, so that equal logits
// put the lower index first. -0 becomes +0 first: the two are equal logits with different bits.
// NaN and -inf, never candidates, get 0, below every candidate (whose key is at least 2^23).
// Below 2^63 for any cols < 2^31.
__device__ uint64_t RankKey(float x, int64_t index, int64_t cols) {
  if (isnan(x) || x == -INFINITY) return 0;
  if (x == 0.0f) x = 0.0f;
  const uint32_t bits = __float_as_uint(x);
  const uint32_t ordered = (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
  return uint64_t{ordered} * static_cast<uint64_t>(cols) + static_cast<uint64_t>(cols - 1 - index);
}

// The sum of weight(x) over the elements whose key is at least `cutoff`.
template <typename Weight>
__device__ double MassFrom(const float* row, int64_t cols, uint64_t cutoff, Weight weight,
                           SharedState& shared) {
  double mass = 0.0;
  for (int64_t i = threadIdx.x; i < cols; i += kSampleThreads) {
    const float x = row[i];
    if (RankKey(x, i, cols) >= cutoff) mass += weight(x);
  }
  return BlockSum(mass, shared);
}

// The largest t in [lo, hi] for which the keys >= t weigh at least `need`, given that the keys
// >= lo do (lo itself is never tested) and that no key above hi counts: the keys >= t are then the
// shortest rank-order prefix of that weight. One pass over the row per halving of [lo, hi] (about
// 48 for a 50k row of ordinary logits). Each pass weighs only the keys in [mid, hi]; when the cut
// turns out to lie below mid, their weight is banked in `above` (the weight of the keys > hi), so
// the weights are computed for a shrinking slice of the row.
template <typename Weight>
__device__ uint64_t ShortestPrefixCut(const float* row, int64_t cols, uint64_t lo, uint64_t hi,
                                      double need, Weight weight, SharedState& shared) {
  double above = 0.0;
  while (lo < hi) {
    const uint64_t mid = hi - (hi - lo) / 2;  // in (lo, hi]
    double slice = 0.0;
    for (int64_t i = threadIdx.x; i < cols; i += kSampleThreads) {
      const float x = row[i];
      const uint64_t key = RankKey(x, i, cols);
      if (key >= mid && key <= hi) slice += weight(x);
    }
    slice = BlockSum(slice, shared);
    if (above + slice >= need) {
      lo = mid;
    } else {
      above += slice;
      hi = mid - 1;
    }
  }
  return lo;
}

// The numbered steps are those of Backend::SampleRows. Every branch below depends only on values
// all threads share (reduced ones, the row's parameters), so the block never diverges at a barrier.
__global__ void __launch_bounds__(kSampleThreads)
    SampleRowsKernel(const float* logits, int64_t cols, const RowSampling* params, int32_t* out) {
  __shared__ SharedState shared;
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * cols;
  const RowSampling p = params[blockIdx.x];
  int32_t& answer = out[blockIdx.x];

  // 0, 1. The ArgmaxRows answer, and the number of candidates for top-k. That answer is the token
  // of a greedy row, of a row whose maximum is +inf (a certainty) and of a row without candidates
  // (whose maximum by that rule is -inf or NaN).
  IndexedValue best = NoValue();
  double candidates = 0.0;
  for (int64_t i = threadIdx.x; i < cols; i += kSampleThreads) {
    const float x = row[i];
    best = Consider(best, x, i);
    candidates += x > -INFINITY ? 1.0 : 0.0;  // false for NaN
  }
  best = BlockArgmax(best, shared.temp.argmax);
  if (p.temperature == 0.0f || !isfinite(best.value)) {
    if (threadIdx.x == 0) answer = best.index;
    return;
  }
  candidates = BlockSum(candidates, shared);
  const float max_logit = best.value;
  const uint64_t top = RankKey(max_logit, best.index, cols);

  // 3. top-k: from here on the kept candidates are those whose key is at least `cutoff`.
  uint64_t cutoff = 1;
  if (p.top_k > 0 && p.top_k < candidates) {
    cutoff = ShortestPrefixCut(
        row, cols, cutoff, top, p.top_k, [](float) { return 1.0; }, shared);
  }

  // 4, 5. top-p, a share of the mass top-k kept.
  const auto weight = [=](float x) { return SampleWeight(x, max_logit, p.temperature); };
  if (p.top_p < 1.0f) {
    const double total = MassFrom(row, cols, cutoff, weight, shared);
    cutoff = ShortestPrefixCut(row, cols, cutoff, top, static_cast<double>(p.top_p) * total, weight,
                               shared);
  }

  // 6. min-p: the top token's p is 1, so the ratio to it is p itself.
  const auto kept_weight = [=](float x) {
    const double w = weight(x);
    return w >= p.min_p ? w : 0.0;
  };
  const double kept_total = MassFrom(row, cols, cutoff, kept_weight, shared);

  // 7. The walk in index order, a tile of kSampleThreads elements at a time.
  const double target = PhiloxUniform(p.seed, p.draw) * kept_total;
  double before = 0.0;          // the kept mass of the tiles already walked
  int64_t last_with_mass = -1;  // this thread's, for the fallback below
  for (int64_t base = 0; base < cols; base += kSampleThreads) {
    const int64_t i = base + threadIdx.x;
    double w = 0.0;
    if (i < cols) {
      const float x = row[i];
      if (RankKey(x, i, cols) >= cutoff) w = kept_weight(x);
    }
    double running = 0.0, tile_mass = 0.0;
    BlockScan(shared.temp.scan).InclusiveSum(w, running, tile_mass);
    __syncthreads();  // before the reduction below reuses the scan's scratch
    // Only a token with mass can win: in a parallel scan a p = 0 element's running sum may be
    // rounded differently from its predecessor's, and such a token must still never be drawn.
    const int64_t hit = w > 0.0 && before + running > target ? i : cols;
    const int64_t first = BlockMinIndex(hit, shared);
    if (first < cols) {
      if (threadIdx.x == 0) answer = static_cast<int32_t>(first);
      return;
    }
    if (w > 0.0) last_with_mass = i;
    before += tile_mass;
  }
  // Unreachable but for rounding: the kept token with mass that has the highest index.
  last_with_mass = BlockMaxIndex(last_with_mass, shared);
  if (threadIdx.x == 0) {
    answer = static_cast<int32_t>(last_with_mass >= 0 ? last_with_mass : best.index);
  }
}

}  // namespace

void LaunchSampleRows(const float* logits, int64_t rows, int64_t cols, const RowSampling* params,
                      int32_t* out, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  SampleRowsKernel<<<static_cast<unsigned>(rows), kSampleThreads, 0, stream>>>(logits, cols, params,
                                                                               out);
  MLKV_CUDA_CHECK_LAUNCH();
}

}  // namespace mlkv::cuda
