// The CUDA paged-attention kernels against the CPU backend's (itself tested against
// double-precision sums in cpu_kernels_test.cc): shuffled block tables, contexts of 1 and
// block_size +- 1, NaN in every unused cache slot, group sizes 1-16, odd block sizes and head
// dims, forced and planned split-KV, f32/f16/bf16 caches, keys rotated on read, prompt chunks and
// decode-only steps; for the SIMT kernel and for the tensor-core kernel. Without a visible CUDA
// device every test is skipped.
//
// The CUDA cache layout differs from the CPU's, so caches are never compared directly: both
// backends write the same keys and values through their own WriteKvCache and attention outputs
// are compared.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention_plan.h"
#include "kernels/testing/attention_reference.h"
#include "kernels/testing/cuda_kernels_fixture.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using cuda::AttentionKernel;
using testing::CosSinTable;
using testing::CudaKernelsTest;
using testing::ExpectNear;
using testing::RandomVector;
using testing::RoundTo;

constexpr AttentionKernel kSimt = AttentionKernel::kSimt;
constexpr AttentionKernel kTensorCore = AttentionKernel::kTensorCore;

struct AttentionCase {
  int64_t num_heads, num_kv_heads, head_dim, block_size;
  DType dtype;
  bool rotate_keys_on_read;
  int64_t split_tokens;  // 0: the planner's choice (which splits this test's 600-token row)
  AttentionKernel kernel = kSimt;
};

constexpr int64_t kNoSplit = int64_t{1} << 20;  // a split longer than any context here

std::string Describe(const AttentionCase& c) {
  return absl::StrCat(c.kernel == kTensorCore ? "mma" : "", "h", c.num_heads, "kv", c.num_kv_heads,
                      "d", c.head_dim, "bs", c.block_size, DTypeName(c.dtype),
                      c.rotate_keys_on_read ? "rot" : "", "split", c.split_tokens);
}

std::string CaseName(const ::testing::TestParamInfo<AttentionCase>& info) {
  return Describe(info.param);
}

// How gtest (and so the CTest test names) prints a case, instead of its raw bytes.
void PrintTo(const AttentionCase& c, std::ostream* os) { *os << Describe(c); }

class CudaAttentionTest : public CudaKernelsTest,
                          public ::testing::WithParamInterface<AttentionCase> {};

// Six sequences at contexts 1, block_size - 1, block_size, block_size + 1, 600 (long enough for
// the planner to split) and 2 x block_size + 3 + 71, attended in two steps: one where the last
// sequence's final 71 tokens are a prompt chunk (71 rows: a remainder for every group's run of
// rows in the tensor-core kernel, and block boundaries inside it), and one of decode rows only.
// Blocks are scattered over a larger pool in random order; every slot first holds NaN, so reading
// any slot past a sequence's end would show.
//
// SIMT: both backends read the same cached values (f16 and bf16 round to nearest even on both), so
// the only differences are float32 summation order and the CPU's polynomial exp (relative error
// 3e-7). Outputs are convex combinations of values ~N(0, 1): 5e-5 is tens of ulps of headroom,
// while a wrong or missing token moves outputs by ~1e-2 or more.
//
// Tensor cores: the kernel rounds the scaled queries, rotated keys and softmax weights to the
// cache's dtype. Its error may be twice that of a double-precision reference making the same
// roundings (testing/attention_reference.h), measured against the exact result on this step.
TEST_P(CudaAttentionTest, MatchesCpu) {
  const AttentionCase c = GetParam();
  CudaBackendOptions options;
  options.attention_split_tokens = c.split_tokens;
  options.attention_kernel = c.kernel;
  auto cuda = CreateCudaBackend(options);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  Backend& gpu = **cuda;
  std::mt19937 rng(7);
  const int64_t d = c.head_dim, bs = c.block_size, rotary_dims = std::min<int64_t>(d / 2 * 2, 16);
  constexpr int32_t kChunkRows = 71;
  const std::vector<int32_t> context = {1,
                                        static_cast<int32_t>(std::max<int64_t>(bs - 1, 1)),
                                        static_cast<int32_t>(bs),
                                        static_cast<int32_t>(bs + 1),
                                        600,
                                        static_cast<int32_t>(2 * bs + 3 + kChunkRows)};
  const int64_t num_seqs = static_cast<int64_t>(context.size());
  const int64_t max_pos = *std::max_element(context.begin(), context.end());
  const int64_t max_blocks = (max_pos + bs - 1) / bs;

  std::vector<int32_t> blocks_needed(num_seqs);
  int64_t total_blocks = 0;
  for (int64_t s = 0; s < num_seqs; ++s) {
    blocks_needed[s] = static_cast<int32_t>((context[s] + bs - 1) / bs);
    total_blocks += blocks_needed[s];
  }
  const int64_t num_blocks = total_blocks + 5;
  std::vector<int32_t> physical(num_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  std::vector<int32_t> block_tables(num_seqs * max_blocks, 0);
  for (int64_t s = 0, next = 0; s < num_seqs; ++s) {
    for (int64_t b = 0; b < blocks_needed[s]; ++b) {
      block_tables[s * max_blocks + b] = physical[next++];
    }
  }

  const int64_t kv_elems = c.num_kv_heads * d;
  const size_t pool_bytes = num_blocks * bs * kv_elems * DTypeBytes(c.dtype);
  auto cpu_k = *cpu_->Allocate(pool_bytes), cpu_v = *cpu_->Allocate(pool_bytes);
  auto gpu_k = *gpu.Allocate(pool_bytes), gpu_v = *gpu.Allocate(pool_bytes);
  KvCacheView cpu_cache{cpu_k->data(), cpu_v->data(), c.dtype, num_blocks, bs, c.num_kv_heads, d};
  KvCacheView gpu_cache{gpu_k->data(), gpu_v->data(), c.dtype, num_blocks, bs, c.num_kv_heads, d};

  // Writes rows of k and v at `slots` through both backends.
  auto write = [&](const std::vector<float>& k, const std::vector<float>& v,
                   const std::vector<int64_t>& slots) {
    StepBatchView host{static_cast<int64_t>(slots.size()), nullptr, slots.data()};
    cpu_->WriteKvCache(k.data(), v.data(), host, cpu_cache);
    auto d_k = Upload(gpu, k), d_v = Upload(gpu, v), d_slots = Upload(gpu, slots);
    StepBatchView device{host.num_tokens, nullptr, d_slots->as<int64_t>()};
    gpu.WriteKvCache(d_k->as<float>(), d_v->as<float>(), device, gpu_cache);
    gpu.Synchronize();  // the uploads are freed on return
  };
  {
    std::vector<int64_t> all_slots(num_blocks * bs);
    std::iota(all_slots.begin(), all_slots.end(), 0);
    std::vector<float> nan_rows(all_slots.size() * kv_elems, std::nanf(""));
    write(nan_rows, nan_rows, all_slots);
  }
  std::vector<std::vector<float>> keys, values;  // what the caches hold
  for (int64_t s = 0; s < num_seqs; ++s) {
    std::vector<int64_t> slots(context[s]);
    for (int64_t t = 0; t < context[s]; ++t) {
      slots[t] = int64_t{block_tables[s * max_blocks + t / bs]} * bs + t % bs;
    }
    std::vector<float> k = RandomVector(context[s] * kv_elems, rng);
    std::vector<float> v = RandomVector(context[s] * kv_elems, rng);
    write(k, v, slots);
    for (float& x : k) x = RoundTo(x, c.dtype);
    for (float& x : v) x = RoundTo(x, c.dtype);
    keys.push_back(std::move(k));
    values.push_back(std::move(v));
  }
  const auto cos_sin = CosSinTable(max_pos, rotary_dims);
  const AttentionParams params{c.num_heads, 1.0f / std::sqrt(static_cast<float>(d)),
                               c.rotate_keys_on_read};
  auto d_table = Upload(gpu, cos_sin), d_tables = Upload(gpu, block_tables),
       d_ctx = Upload(gpu, context);

  for (const bool decode_only : {false, true}) {
    SCOPED_TRACE(decode_only ? "decode rows only" : "with a prompt chunk");
    std::vector<int32_t> positions, query_start = {0};
    for (int64_t s = 0; s < num_seqs; ++s) {
      const int32_t new_tokens = !decode_only && s == num_seqs - 1 ? kChunkRows : 1;
      for (int32_t p = context[s] - new_tokens; p < context[s]; ++p) positions.push_back(p);
      query_start.push_back(static_cast<int32_t>(positions.size()));
    }
    const int64_t rows = static_cast<int64_t>(positions.size()), q_elems = c.num_heads * d;
    const std::vector<float> q = RandomVector(rows * q_elems, rng);

    std::vector<float> expected(rows * q_elems);
    StepBatchView cpu_batch{
        rows,           positions.data(),    nullptr,   num_seqs, query_start.data(),
        context.data(), block_tables.data(), max_blocks};
    cpu_->PagedAttention(q.data(), cpu_batch, cpu_cache, {rotary_dims, max_pos, cos_sin.data()},
                         params, expected.data());

    auto d_q = Upload(gpu, q), d_pos = Upload(gpu, positions), d_qs = Upload(gpu, query_start);
    auto d_out = Upload(gpu, std::vector<float>(rows * q_elems, std::nanf("")));
    StepBatchView gpu_batch{rows,
                            d_pos->as<int32_t>(),
                            nullptr,
                            num_seqs,
                            d_qs->as<int32_t>(),
                            d_ctx->as<int32_t>(),
                            d_tables->as<int32_t>(),
                            max_blocks};
    gpu.PagedAttention(d_q->as<float>(), gpu_batch, gpu_cache,
                       {rotary_dims, max_pos, d_table->as<float>()}, params, d_out->as<float>());

    double tolerance = 5e-5;
    if (c.kernel == kTensorCore) {
      // The backend plans the same shape: the case must really run on the tensor cores.
      cuda::AttentionShape shape;
      shape.num_tokens = rows;
      shape.num_heads = c.num_heads;
      shape.num_kv_heads = c.num_kv_heads;
      shape.head_dim = d;
      shape.kv_dtype = c.dtype;
      shape.num_seqs = num_seqs;
      shape.kernel = kTensorCore;
      ASSERT_TRUE(cuda::TensorCoreAttentionServes(shape)) << Describe(c);
      const testing::AttentionReferenceInput reference{
          params, c.num_kv_heads, d, q, positions, query_start, keys, values, rotary_dims, cos_sin};
      const std::vector<double> exact = testing::ReferenceAttention(reference, std::nullopt);
      const std::vector<double> narrow = testing::ReferenceAttention(reference, c.dtype);
      double same_dtype_error = 0.0;
      for (size_t i = 0; i < exact.size(); ++i) {
        same_dtype_error = std::max(same_dtype_error, std::fabs(narrow[i] - exact[i]));
      }
      EXPECT_GT(same_dtype_error, 0.0) << "the reference rounds nothing";
      tolerance += 2 * same_dtype_error;
    }
    ExpectNear(Download<float>(gpu, *d_out), expected, tolerance, 0,
               absl::StrCat(Describe(c), " (tolerance ", tolerance, ")"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Simt, CudaAttentionTest,
    ::testing::Values(
        // A single pass over each context (no merge kernel).
        AttentionCase{4, 4, 64, 16, DType::kF32, false, kNoSplit},
        AttentionCase{12, 1, 64, 16, DType::kBF16, true, kNoSplit},
        AttentionCase{12, 1, 64, 16, DType::kF16, true, kNoSplit},
        AttentionCase{6, 3, 17, 7, DType::kF32, true, kNoSplit},
        // Group sizes 1, 2, 4, 8, 12, 16 at head_dim 64 (float4 path), block size 16.
        AttentionCase{4, 4, 64, 16, DType::kF32, false, 0},
        AttentionCase{8, 4, 64, 16, DType::kF32, true, 0},
        AttentionCase{8, 2, 64, 16, DType::kBF16, false, 0},
        AttentionCase{16, 2, 64, 16, DType::kF32, false, 0},
        AttentionCase{12, 1, 64, 16, DType::kF32, true, 0},
        AttentionCase{12, 1, 64, 16, DType::kBF16, true, 0},
        AttentionCase{16, 1, 64, 16, DType::kBF16, false, 0},
        AttentionCase{4, 4, 64, 16, DType::kF16, false, 0},
        // Odd and tiny block sizes; blocks larger than a tile.
        AttentionCase{12, 3, 64, 1, DType::kF32, false, 0},
        AttentionCase{12, 3, 64, 5, DType::kBF16, true, 0},
        AttentionCase{4, 1, 64, 17, DType::kF32, true, 0},
        AttentionCase{4, 2, 64, 33, DType::kF32, false, 0},
        // Head dims: 128 and 256 (opt-in shared memory), 12 (float4 for f32, scalar for bf16),
        // 17 and 5 (scalar path).
        AttentionCase{8, 2, 128, 16, DType::kF32, true, 0},
        AttentionCase{16, 1, 256, 16, DType::kBF16, false, 0},
        AttentionCase{6, 3, 12, 16, DType::kF32, false, 0},
        AttentionCase{6, 3, 12, 16, DType::kBF16, true, 0},
        AttentionCase{6, 3, 17, 7, DType::kF32, true, 0},
        AttentionCase{16, 1, 5, 16, DType::kBF16, false, 0},
        AttentionCase{6, 3, 17, 7, DType::kF16, true, 0},
        // group x head_dim above 1024: the kernel built with 32 accumulators per thread (the
        // others use 8), vectorised and scalar.
        AttentionCase{16, 1, 128, 16, DType::kF32, true, 0},
        AttentionCase{12, 1, 127, 16, DType::kF32, false, 0},
        // Forced split-KV: one tile per split, and two tiles per split.
        AttentionCase{12, 1, 64, 16, DType::kF32, true, 32},
        AttentionCase{12, 12, 64, 16, DType::kBF16, false, 32},
        AttentionCase{8, 2, 17, 5, DType::kF32, false, 64},
        AttentionCase{16, 16, 128, 32, DType::kBF16, true, 64},
        AttentionCase{12, 1, 64, 16, DType::kF16, false, 32}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    TensorCore, CudaAttentionTest,
    ::testing::Values(
        // Group sizes 1, 2, 3, 4, 8, 12, 16 at head_dim 64, block size 16, both dtypes.
        AttentionCase{4, 4, 64, 16, DType::kBF16, false, kNoSplit, kTensorCore},
        AttentionCase{8, 4, 64, 16, DType::kF16, true, 0, kTensorCore},
        AttentionCase{6, 2, 64, 16, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{8, 2, 64, 16, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{16, 2, 64, 16, DType::kF16, false, 0, kTensorCore},
        AttentionCase{12, 1, 64, 16, DType::kBF16, true, kNoSplit, kTensorCore},
        AttentionCase{12, 1, 64, 16, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{12, 1, 64, 16, DType::kF16, false, 0, kTensorCore},
        AttentionCase{16, 1, 64, 16, DType::kBF16, false, 0, kTensorCore},
        // Odd and tiny block sizes; blocks larger than a tile of 64 tokens.
        AttentionCase{12, 3, 64, 1, DType::kBF16, false, 0, kTensorCore},
        AttentionCase{12, 3, 64, 5, DType::kF16, true, 0, kTensorCore},
        AttentionCase{4, 1, 64, 17, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{4, 2, 64, 65, DType::kF16, false, 0, kTensorCore},
        // Every other head dim it is built for; 128 opts into more shared memory.
        AttentionCase{6, 3, 80, 16, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{12, 2, 96, 16, DType::kF16, false, 0, kTensorCore},
        AttentionCase{16, 1, 128, 16, DType::kBF16, true, 0, kTensorCore},
        AttentionCase{8, 8, 128, 32, DType::kF16, false, 0, kTensorCore},
        // Forced split-KV: one tile per split, and two tiles per split.
        AttentionCase{12, 1, 64, 16, DType::kBF16, true, 64, kTensorCore},
        AttentionCase{12, 12, 64, 16, DType::kF16, false, 128, kTensorCore},
        AttentionCase{8, 2, 80, 5, DType::kBF16, false, 64, kTensorCore}),
    CaseName);

}  // namespace
}  // namespace mlkv
