// The CPU kernels against direct, unoptimised computations written here in double precision:
// GEMM with its epilogues (GELU, residual add), layernorm, rotary, and paged attention over
// shuffled blocks in every cache dtype.
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/half.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/testing/attention_reference.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using testing::CosSinTable;
using testing::NarrowBits;
using testing::RandomVector;
using testing::RoundTo;

double GeluDirect(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }
double GeluTanhDirect(double v) {
  return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
}

// What out[i] holds after a Linear whose product is p, where out held `prior` before.
double EpilogueDirect(LinearEpilogue epilogue, double p, double prior) {
  switch (epilogue) {
    case LinearEpilogue::kStore:
      return p;
    case LinearEpilogue::kGeluExact:
      return GeluDirect(p);
    case LinearEpilogue::kGeluTanh:
      return GeluTanhDirect(p);
    case LinearEpilogue::kAccumulate:
      return prior + p;
  }
  return std::nan("");
}

constexpr LinearEpilogue kEpilogues[] = {LinearEpilogue::kStore, LinearEpilogue::kGeluExact,
                                         LinearEpilogue::kGeluTanh, LinearEpilogue::kAccumulate};

// Every epilogue, with and without a bias, on one row (the GEMV path) and several. The output
// starts as NaN for the epilogues that must not read it, and as a residual for kAccumulate.
TEST(CpuKernelsTest, LinearMatchesDirectSum) {
  auto backend = CreateCpuBackend();
  std::mt19937 rng(1);
  for (LinearEpilogue epilogue : kEpilogues) {
    for (bool with_bias : {false, true}) {
      for (int64_t rows : {1, 3, 17}) {
        const int64_t k = 37, n = 29;
        auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng),
             b = RandomVector(n, rng);
        const bool accumulate = epilogue == LinearEpilogue::kAccumulate;
        const std::vector<float> prior =
            accumulate ? RandomVector(rows * n, rng) : std::vector<float>(rows * n, std::nanf(""));
        std::vector<float> out = prior;
        backend->Linear(in.data(), rows, k, w.data(), with_bias ? b.data() : nullptr, n, epilogue,
                        out.data());
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            double p = with_bias ? b[j] : 0.0;
            for (int64_t i = 0; i < k; ++i) p += double(in[r * k + i]) * w[j * k + i];
            ASSERT_NEAR(out[r * n + j], EpilogueDirect(epilogue, p, prior[r * n + j]), 1e-4)
                << static_cast<int>(epilogue) << " bias " << with_bias << " rows " << rows << " "
                << r << " " << j;
          }
        }
      }
    }
  }
}

// GELU itself, on a product that is exactly its input (one weight of 1, no bias): the CPU's
// polynomial erf and tanh stay within 1e-6 of libm's.
TEST(CpuKernelsTest, GeluEpiloguesMatchLibm) {
  auto backend = CreateCpuBackend();
  const std::vector<float> x = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f};
  const float one = 1.0f;
  const int64_t rows = static_cast<int64_t>(x.size());
  std::vector<float> exact(x.size()), tanh_approx(x.size());
  backend->Linear(x.data(), rows, 1, &one, nullptr, 1, LinearEpilogue::kGeluExact, exact.data());
  backend->Linear(x.data(), rows, 1, &one, nullptr, 1, LinearEpilogue::kGeluTanh,
                  tanh_approx.data());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(exact[i], GeluDirect(x[i]), 1e-6) << x[i];
    EXPECT_NEAR(tanh_approx[i], GeluTanhDirect(x[i]), 1e-6) << x[i];
  }
}

// f16/bf16 weights are widened exactly, so the product is the float32 one with the rounded weights.
// k is large enough that the weights are widened in several panels (linear.cc), the last short.
TEST(CpuKernelsTest, LinearWithNarrowWeightsMultipliesTheRoundedWeights) {
  auto backend = CreateCpuBackend();
  std::mt19937 rng(4);
  const int64_t k = 4100, n = 100;
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (int64_t rows : {1, 3, 17}) {
      auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng);
      auto b = RandomVector(n, rng);
      const std::vector<uint16_t> stored = NarrowBits(w, dtype);
      // Accumulating onto a residual: each panel's product must land on its own columns.
      const std::vector<float> prior = RandomVector(rows * n, rng);
      std::vector<float> out = prior;
      backend->Linear(in.data(), rows, k, WeightView(stored.data(), dtype), b.data(), n,
                      LinearEpilogue::kAccumulate, out.data());
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < n; ++j) {
          double expected = double(prior[r * n + j]) + b[j];
          for (int64_t i = 0; i < k; ++i) {
            expected += double(in[r * k + i]) * RoundTo(w[j * k + i], dtype);
          }
          // Sums of 4100 unit-variance products (~64 in size): float32 summation error only.
          ASSERT_NEAR(out[r * n + j], expected, 2e-3)
              << DTypeName(dtype) << " rows " << rows << " " << r << " " << j;
        }
      }
    }
  }
}

TEST(CpuKernelsTest, EmbeddingWidensNarrowTables) {
  auto backend = CreateCpuBackend();
  std::mt19937 rng(5);
  const int64_t vocab = 11, cols = 19;
  const std::vector<int32_t> ids = {3, 0, 10, 3};
  const auto table = RandomVector(vocab * cols, rng);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const std::vector<uint16_t> stored = NarrowBits(table, dtype);
    const WeightView view =
        dtype == DType::kF32 ? WeightView(table.data()) : WeightView(stored.data(), dtype);
    std::vector<float> out(ids.size() * cols);
    backend->Embedding(view, cols, ids.data(), static_cast<int64_t>(ids.size()), out.data());
    for (size_t t = 0; t < ids.size(); ++t) {
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(out[t * cols + c], RoundTo(table[ids[t] * cols + c], dtype))
            << DTypeName(dtype) << " row " << t << " col " << c;
      }
    }
  }
}

// The rule the host sampler's greedy pick follows, case by case (sampler.cc ArgMax).
TEST(CpuKernelsTest, ArgmaxRowsTakesLowestIndexOfLargestAndSkipsNan) {
  auto backend = CreateCpuBackend();
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  const std::vector<std::vector<float>> rows = {
      {1.0f, 3.0f, 2.0f, 3.0f},  // tie: the lower index
      {nan, -5.0f, nan, -4.0f},  // NaN is never the answer
      {nan, nan, nan, nan},      // all NaN: the last index
      {-inf, -inf, -inf, -inf},  // all -inf: the first
      {-inf, inf, 0.0f, inf},    // +inf wins, lowest index
      {2.0f, 1.0f, 1.0f, 1.0f},  // the first column
  };
  const std::vector<int32_t> want = {1, 3, 3, 0, 1, 0};
  std::vector<float> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  std::vector<int32_t> got(rows.size(), -1);
  backend->ArgmaxRows(flat.data(), static_cast<int64_t>(rows.size()), 4, got.data());
  EXPECT_EQ(got, want);
  const float single = 7.0f;
  int32_t one = -1;
  backend->ArgmaxRows(&single, 1, 1, &one);
  EXPECT_EQ(one, 0);
}

TEST(CpuKernelsTest, LayerNorm) {
  auto backend = CreateCpuBackend();
  std::mt19937 rng(2);
  const int64_t rows = 5, cols = 33;
  auto in = RandomVector(rows * cols, rng, 3.0f), gamma = RandomVector(cols, rng),
       beta = RandomVector(cols, rng);
  std::vector<float> out(rows * cols);
  backend->LayerNorm(in.data(), gamma.data(), beta.data(), 1e-5f, rows, cols, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mean += in[r * cols + c] / double(cols);
    for (int64_t c = 0; c < cols; ++c) var += std::pow(in[r * cols + c] - mean, 2) / double(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const double expected =
          (in[r * cols + c] - mean) / std::sqrt(var + 1e-5) * gamma[c] + beta[c];
      ASSERT_NEAR(out[r * cols + c], expected, 1e-5);
    }
  }
}

struct AttentionCase {
  int64_t num_heads, num_kv_heads, block_size;
  DType dtype;
  bool rotate_keys_on_read;
  // 64 and 128 take the kernels' fixed-size paths, and four or more query vectors per KV head (a
  // group's heads over a tile of rows) their tiles of four (block sizes 16 and 32 for the scores,
  // head dims 64 and 128 for the values).
  int64_t head_dim = 16;
};

class PagedAttentionTest : public ::testing::TestWithParam<AttentionCase> {};

// Two sequences: one decodes a single token after a long context, one feeds a prompt chunk on top
// of an existing prefix (6 rows at positions 15-20: a tile of four rows whose first ends on a
// block boundary of 16, then one of two). Their blocks are shuffled over the pool, and unused
// slots are poisoned.
TEST_P(PagedAttentionTest, MatchesDenseCausalAttention) {
  const AttentionCase c = GetParam();
  const int64_t d = c.head_dim, rotary_dims = 8, max_pos = 64;
  const std::vector<int32_t> context = {37, 21}, new_tokens = {1, 6};
  auto backend = CreateCpuBackend();
  std::mt19937 rng(3);

  const int64_t max_blocks = (max_pos + c.block_size - 1) / c.block_size;
  const int64_t num_blocks = 2 * max_blocks + 3;
  std::vector<int32_t> physical(num_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  std::vector<int32_t> block_tables(2 * max_blocks);
  for (int64_t i = 0; i < 2 * max_blocks; ++i) block_tables[i] = physical[i];

  // Dense keys/values per sequence as float32 values exactly representable in the cache dtype.
  auto round = [&](float x) { return RoundTo(x, c.dtype); };
  const int64_t kv_elems = c.num_kv_heads * d;
  std::vector<std::vector<float>> keys(2), values(2);
  for (int s = 0; s < 2; ++s) {
    keys[s] = RandomVector(context[s] * kv_elems, rng);
    values[s] = RandomVector(context[s] * kv_elems, rng);
    for (float& x : keys[s]) x = round(x);
    for (float& x : values[s]) x = round(x);
  }
  // Write every cached token through the kernel (slot mapping from the block tables); unused
  // slots hold NaN so that reading one would show.
  const size_t cache_elems = num_blocks * c.block_size * kv_elems;
  auto k_cache = *backend->Allocate(cache_elems * DTypeBytes(c.dtype));
  auto v_cache = *backend->Allocate(cache_elems * DTypeBytes(c.dtype));
  KvCacheView cache{k_cache->data(), v_cache->data(), c.dtype, num_blocks,
                    c.block_size,    c.num_kv_heads,  d};
  {
    std::vector<float> nan_rows(num_blocks * c.block_size * kv_elems, std::nanf(""));
    std::vector<int64_t> all_slots(num_blocks * c.block_size);
    std::iota(all_slots.begin(), all_slots.end(), 0);
    StepBatchView poison{static_cast<int64_t>(all_slots.size()), nullptr, all_slots.data()};
    backend->WriteKvCache(nan_rows.data(), nan_rows.data(), poison, cache);
  }
  for (int s = 0; s < 2; ++s) {
    std::vector<int64_t> slots(context[s]);
    for (int64_t t = 0; t < context[s]; ++t) {
      slots[t] = int64_t(block_tables[s * max_blocks + t / c.block_size]) * c.block_size +
                 t % c.block_size;
    }
    StepBatchView write{context[s], nullptr, slots.data()};
    backend->WriteKvCache(keys[s].data(), values[s].data(), write, cache);
  }

  // The step's rows: the last new_tokens[s] positions of each sequence.
  std::vector<int32_t> positions, query_start = {0};
  for (int s = 0; s < 2; ++s) {
    for (int32_t i = context[s] - new_tokens[s]; i < context[s]; ++i) positions.push_back(i);
    query_start.push_back(static_cast<int32_t>(positions.size()));
  }
  const int64_t rows = positions.size(), q_elems = c.num_heads * d;
  auto q = RandomVector(rows * q_elems, rng);
  std::vector<float> out(rows * q_elems);
  auto cos_sin = CosSinTable(max_pos, rotary_dims, 10000.0);
  RotaryView rotary{rotary_dims, max_pos, cos_sin.data()};
  StepBatchView batch{rows,           positions.data(),    nullptr,   2, query_start.data(),
                      context.data(), block_tables.data(), max_blocks};
  AttentionParams params{c.num_heads, 1.0f / std::sqrt(float(d)), c.rotate_keys_on_read};
  backend->PagedAttention(q.data(), batch, cache, rotary, params, out.data());

  const testing::AttentionReferenceInput reference{
      params, c.num_kv_heads, d, q, positions, query_start, keys, values, rotary_dims, cos_sin};
  const std::vector<double> expected = testing::ReferenceAttention(reference, std::nullopt);
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(out[i], expected[i], 2e-5)
        << "row " << i / q_elems << " head " << i % q_elems / d << " dim " << i % d;
  }
  // The reference with the CUDA tensor-core kernel's roundings, whose distance from the exact
  // result sets that kernel's tolerance (kernels/cuda/cuda_attention_test.cc): it must round
  // something, and by about the dtype's precision (2^-8 relative for bf16, 2^-11 for f16) on
  // outputs of order 1.
  if (c.dtype != DType::kF32) {
    const std::vector<double> narrow = testing::ReferenceAttention(reference, c.dtype);
    double error = 0.0;
    for (size_t i = 0; i < expected.size(); ++i) {
      error = std::max(error, std::fabs(narrow[i] - expected[i]));
    }
    const double precision = c.dtype == DType::kBF16 ? 1.0 / 256 : 1.0 / 2048;
    EXPECT_GT(error, precision / 100);
    EXPECT_LT(error, precision * 4);
    std::printf("%s narrow reference: max error %.2e\n", DTypeName(c.dtype), error);
  }
}

INSTANTIATE_TEST_SUITE_P(
    GroupSizesBlockSizesDtypes, PagedAttentionTest,
    ::testing::Values(
        AttentionCase{4, 4, 16, DType::kF32, false}, AttentionCase{4, 4, 1, DType::kF32, true},
        AttentionCase{12, 1, 16, DType::kF32, false}, AttentionCase{12, 3, 5, DType::kBF16, true},
        AttentionCase{8, 2, 32, DType::kBF16, false}, AttentionCase{16, 16, 15, DType::kF32, true},
        AttentionCase{16, 1, 17, DType::kBF16, true}, AttentionCase{12, 1, 16, DType::kF16, true},
        AttentionCase{8, 2, 5, DType::kF16, false},
        AttentionCase{12, 12, 16, DType::kF32, false, 64},
        AttentionCase{12, 1, 16, DType::kBF16, true, 64},
        AttentionCase{8, 2, 32, DType::kF32, true, 128},
        AttentionCase{4, 4, 7, DType::kF32, false, 64},
        // groups of 6: a tile of four heads and two more one by one
        AttentionCase{12, 2, 16, DType::kF32, true, 64},
        AttentionCase{6, 3, 16, DType::kF32, false, 17}));

// Rows of a prompt chunk are attended together, but causally: the last token's non-finite value
// (an f16 cache's overflow, say) must not reach the rows before it, which do not attend to it.
// With one head of 64 dims over 4 rows, the rows share the kernel's tiles; the block of 16 ends
// past every row, so the boundary path is taken.
TEST(CpuKernelsTest, PromptChunkRowsNeverReadLaterTokens) {
  auto backend = CreateCpuBackend();
  std::mt19937 rng(8);
  const int64_t rows = 4, d = 64, block_size = 16;
  auto k = RandomVector(rows * d, rng), v = RandomVector(rows * d, rng);
  v[(rows - 1) * d + 5] = std::numeric_limits<float>::infinity();
  auto k_pool = *backend->Allocate(block_size * d * sizeof(float));
  auto v_pool = *backend->Allocate(block_size * d * sizeof(float));
  const KvCacheView cache{k_pool->data(), v_pool->data(), DType::kF32, 1, block_size, 1, d};
  const std::vector<int64_t> slots = {0, 1, 2, 3};
  const std::vector<int32_t> positions = {0, 1, 2, 3}, query_start = {0, 4}, context = {4},
                             table = {0};
  backend->WriteKvCache(k.data(), v.data(), {rows, nullptr, slots.data()}, cache);
  const auto q = RandomVector(rows * d, rng);
  std::vector<float> out(rows * d);
  const StepBatchView batch{rows,           positions.data(), nullptr, 1, query_start.data(),
                            context.data(), table.data(),     1};
  backend->PagedAttention(q.data(), batch, cache, RotaryView{}, AttentionParams{1, 0.125f, false},
                          out.data());
  for (int64_t r = 0; r + 1 < rows; ++r) {
    for (int64_t i = 0; i < d; ++i) {
      ASSERT_TRUE(std::isfinite(out[r * d + i])) << "row " << r << " dim " << i;
    }
  }
  EXPECT_TRUE(std::isinf(out[(rows - 1) * d + 5]));  // the last row does attend to it
}

}  // namespace
}  // namespace mlkv
