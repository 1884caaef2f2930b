// Every CUDA op against the CPU backend (kernels/cpu, itself tested against double-precision
// sums in cpu_kernels_test.cc) on the same random inputs: odd sizes, f16/bf16 weights, and
// padding rows of the cache write. Attention, sampling and graph capture have files of their own
// (cuda_attention_test.cc, cuda_sample_rows_test.cc, cuda_graph_test.cc). Without a visible CUDA
// device every test is skipped.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device_info.h"
#include "kernels/testing/cuda_kernels_fixture.h"
#include "kernels/testing/negative_slots.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using testing::CosSinTable;
using testing::CudaKernelsTest;
using testing::ExpectNear;
using testing::NarrowBits;
using testing::RandomVector;
using testing::RoundTo;

TEST_F(CudaKernelsTest, AllocateZeroesAndReportsOutOfMemory) {
  auto buffer = cuda_->Allocate(1001 * sizeof(float));
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  for (float x : Download<float>(*cuda_, **buffer)) ASSERT_EQ(x, 0.0f);
  auto huge = cuda_->Allocate(size_t{1} << 60);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(huge.status().message().find("bytes free"), std::string::npos) << huge.status();
  // The failure leaves the device usable.
  auto after = cuda_->Allocate(64);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(cuda_->Allocate(0).ok());
}

TEST_F(CudaKernelsTest, DeviceMemoryQuery) {
  auto memory = QueryDeviceMemory(0);
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_GT(memory->total_bytes, 0);
  EXPECT_GT(memory->free_bytes, 0);
  EXPECT_LE(memory->free_bytes, memory->total_bytes);
  EXPECT_FALSE(QueryDeviceMemory(CudaDeviceCount()).ok());
}

// Float32 GEMMs in two summation orders, with every epilogue. An indexing mistake gives errors of
// order one; rounding stays far below 3e-6 * k (each of the k products is ~1 and float32's
// epsilon is 6e-8), and GELU's slope is at most 1.13. The output starts as NaN for the
// epilogues that must not read it, and as the same residual on both backends for kAccumulate.
TEST_F(CudaKernelsTest, LinearMatchesCpu) {
  std::mt19937 rng(1);
  for (LinearEpilogue epilogue : {LinearEpilogue::kStore, LinearEpilogue::kGeluExact,
                                  LinearEpilogue::kGeluTanh, LinearEpilogue::kAccumulate}) {
    for (int64_t rows : {1, 3, 17, 64}) {
      for (int64_t k : {1, 37, 256}) {
        for (int64_t n : {1, 29, 300}) {
          for (bool with_bias : {false, true}) {
            auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng),
                 b = RandomVector(n, rng);
            const std::vector<float> prior = epilogue == LinearEpilogue::kAccumulate
                                                 ? RandomVector(rows * n, rng)
                                                 : std::vector<float>(rows * n, std::nanf(""));
            std::vector<float> expected = prior;
            cpu_->Linear(in.data(), rows, k, w.data(), with_bias ? b.data() : nullptr, n, epilogue,
                         expected.data());
            auto d_in = Upload(*cuda_, in), d_w = Upload(*cuda_, w), d_b = Upload(*cuda_, b);
            auto d_out = Upload(*cuda_, prior);
            cuda_->Linear(d_in->as<float>(), rows, k, d_w->as<float>(),
                          with_bias ? d_b->as<float>() : nullptr, n, epilogue, d_out->as<float>());
            ExpectNear(Download<float>(*cuda_, *d_out), expected, 3e-6 * k + 1e-5, 0,
                       absl::StrCat("linear ", static_cast<int>(epilogue), " ", rows, "x", k, "x",
                                    n, with_bias ? " bias" : ""));
          }
        }
      }
    }
  }
}

// TF32 rounds each input to a 10-bit mantissa (relative error 2^-11 per factor): over k products
// of size ~1 with random signs the error grows like sqrt(k) x 1e-3.
TEST_F(CudaKernelsTest, LinearWithTf32StaysWithinItsPrecision) {
  CudaBackendOptions options;
  options.allow_tf32 = true;
  auto tf32 = CreateCudaBackend(options);
  ASSERT_TRUE(tf32.ok()) << tf32.status();
  std::mt19937 rng(2);
  const int64_t rows = 33, k = 512, n = 130;
  auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng), b = RandomVector(n, rng);
  std::vector<float> expected(rows * n);
  cpu_->Linear(in.data(), rows, k, w.data(), b.data(), n, LinearEpilogue::kStore, expected.data());
  auto d_in = Upload(**tf32, in), d_w = Upload(**tf32, w), d_b = Upload(**tf32, b);
  auto d_out = Upload(**tf32, std::vector<float>(rows * n));
  (*tf32)->Linear(d_in->as<float>(), rows, k, d_w->as<float>(), d_b->as<float>(), n,
                  LinearEpilogue::kStore, d_out->as<float>());
  ExpectNear(Download<float>(**tf32, *d_out), expected, 4e-3 * std::sqrt(double(k)), 0, "tf32");
}

// f16/bf16 weights: CUDA rounds the input to the weights' dtype and multiplies on the tensor cores
// in float32. The CPU product of the same rounded input with the same weights is exact in its
// factors, so the two differ only by float32 summation order, as in LinearMatchesCpu; sizes
// straddle the tensor-core tile edges (8, 16) and an odd k.
TEST_F(CudaKernelsTest, LinearWithNarrowWeightsMatchesCpuOnRoundedInput) {
  std::mt19937 rng(11);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    for (int64_t rows : {1, 7, 17, 130}) {
      for (int64_t k : {37, 768}) {
        for (int64_t n : {1, 15, 300}) {
          auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng),
               b = RandomVector(n, rng);
          const std::vector<uint16_t> stored = NarrowBits(w, dtype);
          std::vector<float> rounded_in = in;
          for (float& x : rounded_in) x = RoundTo(x, dtype);
          std::vector<float> expected(rows * n);
          cpu_->Linear(rounded_in.data(), rows, k, WeightView(stored.data(), dtype), b.data(), n,
                       LinearEpilogue::kStore, expected.data());
          auto d_in = Upload(*cuda_, in), d_w = Upload(*cuda_, stored), d_b = Upload(*cuda_, b);
          auto d_out = Upload(*cuda_, std::vector<float>(rows * n, std::nanf("")));
          cuda_->Linear(d_in->as<float>(), rows, k, WeightView(d_w->data(), dtype),
                        d_b->as<float>(), n, LinearEpilogue::kStore, d_out->as<float>());
          ExpectNear(Download<float>(*cuda_, *d_out), expected, 3e-6 * k + 1e-5, 0,
                     absl::StrCat(DTypeName(dtype), " linear ", rows, "x", k, "x", n));
        }
      }
    }
  }
}

// The CPU sums in double, CUDA in float32 over a block reduction: with rows of mean 5 and scale 3
// the normalised values are ~1 and float32 keeps them to ~1e-6; 5e-5 leaves room for long rows.
TEST_F(CudaKernelsTest, LayerNormMatchesCpu) {
  std::mt19937 rng(3);
  for (int64_t rows : {1, 5, 33}) {
    for (int64_t cols : {1, 7, 64, 1000, 2049}) {
      auto in = RandomVector(rows * cols, rng, 3.0f, 5.0f), gamma = RandomVector(cols, rng),
           beta = RandomVector(cols, rng);
      std::vector<float> expected(rows * cols);
      cpu_->LayerNorm(in.data(), gamma.data(), beta.data(), 1e-5f, rows, cols, expected.data());
      auto d_in = Upload(*cuda_, in), d_g = Upload(*cuda_, gamma), d_b = Upload(*cuda_, beta);
      auto d_out = Upload(*cuda_, std::vector<float>(rows * cols));
      cuda_->LayerNorm(d_in->as<float>(), d_g->as<float>(), d_b->as<float>(), 1e-5f, rows, cols,
                       d_out->as<float>());
      ExpectNear(Download<float>(*cuda_, *d_out), expected, 5e-5, 1e-5,
                 absl::StrCat("layernorm ", rows, "x", cols));
    }
  }
}

// GELU itself, on a product that is exactly its input (one weight of 1, no bias). The CPU's
// polynomial erf/tanh are within 5e-7 absolute of libm, CUDA's erff/tanhf within a few ulps.
// GELU scales that error by 0.5 |x|, up to ~8 for these N(0, 3) inputs (5 sigma): 5e-6 absolute
// plus 1e-6 relative covers both.
TEST_F(CudaKernelsTest, GeluEpiloguesMatchCpu) {
  std::mt19937 rng(4);
  const std::vector<float> one = {1.0f};
  auto d_one = Upload(*cuda_, one);
  for (int64_t count : {1, 1000, 100003}) {
    for (LinearEpilogue gelu : {LinearEpilogue::kGeluExact, LinearEpilogue::kGeluTanh}) {
      const auto x = RandomVector(count, rng, 3.0f);
      std::vector<float> expected(count);
      cpu_->Linear(x.data(), count, 1, one.data(), nullptr, 1, gelu, expected.data());
      auto d_x = Upload(*cuda_, x);
      auto d_out = Upload(*cuda_, std::vector<float>(count, std::nanf("")));
      cuda_->Linear(d_x->as<float>(), count, 1, d_one->as<float>(), nullptr, 1, gelu,
                    d_out->as<float>());
      ExpectNear(Download<float>(*cuda_, *d_out), expected, 5e-6, 1e-6,
                 absl::StrCat("gelu ", static_cast<int>(gelu), " x ", count));
    }
  }
}

TEST_F(CudaKernelsTest, EmbeddingAndGatherRowsCopyExactly) {
  std::mt19937 rng(5);
  for (int64_t cols : {1, 33, 768}) {
    const int64_t vocab = 50, rows = 13;
    auto table = RandomVector(vocab * cols, rng);
    std::vector<int32_t> ids(rows);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    std::vector<float> expected(rows * cols);
    cpu_->Embedding(table.data(), cols, ids.data(), rows, expected.data());
    auto d_table = Upload(*cuda_, table);
    auto d_ids = Upload(*cuda_, ids);
    auto d_out = Upload(*cuda_, std::vector<float>(rows * cols));
    cuda_->Embedding(d_table->as<float>(), cols, d_ids->as<int32_t>(), rows, d_out->as<float>());
    EXPECT_EQ(Download<float>(*cuda_, *d_out), expected);
    cpu_->GatherRows(table.data(), cols, ids.data(), rows, expected.data());
    cuda_->GatherRows(d_table->as<float>(), cols, d_ids->as<int32_t>(), rows, d_out->as<float>());
    EXPECT_EQ(Download<float>(*cuda_, *d_out), expected);
    // f16/bf16 tables widen exactly.
    for (DType dtype : {DType::kF16, DType::kBF16}) {
      const std::vector<uint16_t> stored = NarrowBits(table, dtype);
      cpu_->Embedding(WeightView(stored.data(), dtype), cols, ids.data(), rows, expected.data());
      auto d_stored = Upload(*cuda_, stored);
      cuda_->Embedding(WeightView(d_stored->data(), dtype), cols, d_ids->as<int32_t>(), rows,
                       d_out->as<float>());
      EXPECT_EQ(Download<float>(*cuda_, *d_out), expected) << DTypeName(dtype);
    }
  }
}

// Two products and a sum per element; CUDA may fuse one product into an FMA, so results differ by
// an ulp or so of values ~1.
// Exact agreement: argmax involves no arithmetic. Rows of a vocabulary's width and odd widths,
// random values with planted ties, NaNs and an all-NaN row, so that every branch of the
// reduction's ordering is exercised across warps and threads.
TEST_F(CudaKernelsTest, ArgmaxRowsMatchesCpu) {
  std::mt19937 rng(9);
  for (int64_t cols : {1, 31, 257, 50304}) {
    const int64_t rows = 7;
    auto logits = RandomVector(rows * cols, rng, 4.0f);
    std::uniform_int_distribution<int64_t> col(0, cols - 1);
    const float top = 100.0f;
    logits[0 * cols + col(rng)] = top;  // row 0: a tie between two planted maxima
    logits[0 * cols + col(rng)] = top;
    for (int i = 0; i < 5; ++i) logits[1 * cols + col(rng)] = std::nanf("");         // row 1: NaNs
    std::fill(logits.begin() + 2 * cols, logits.begin() + 3 * cols, std::nanf(""));  // row 2
    logits[3 * cols] = std::nanf("");  // row 3: NaN first, so the scan must skip it
    std::vector<int32_t> expected(rows);
    cpu_->ArgmaxRows(logits.data(), rows, cols, expected.data());
    auto d_logits = Upload(*cuda_, logits);
    auto d_out = Upload(*cuda_, std::vector<int32_t>(rows, -1));
    cuda_->ArgmaxRows(d_logits->as<float>(), rows, cols, d_out->as<int32_t>());
    EXPECT_EQ(Download<int32_t>(*cuda_, *d_out), expected) << "cols " << cols;
  }
}

TEST_F(CudaKernelsTest, RotaryMatchesCpu) {
  std::mt19937 rng(6);
  const int64_t rows = 7, max_pos = 4096;
  for (int64_t heads : {1, 3}) {
    for (int64_t head_dim : {16, 17, 64}) {
      for (int64_t rotary_dims : {0, 8, 16}) {
        auto cos_sin = CosSinTable(max_pos, rotary_dims);
        std::vector<int32_t> positions(rows);
        for (auto& p : positions) p = static_cast<int32_t>(rng() % max_pos);
        auto x = RandomVector(rows * heads * head_dim, rng);
        auto expected = x;
        cpu_->Rotary(expected.data(), rows, heads, head_dim, positions.data(),
                     {rotary_dims, max_pos, cos_sin.data()});
        auto d_x = Upload(*cuda_, x), d_pos = Upload(*cuda_, positions);
        auto d_table = Upload(*cuda_, cos_sin.empty() ? std::vector<float>(1) : cos_sin);
        cuda_->Rotary(d_x->as<float>(), rows, heads, head_dim, d_pos->as<int32_t>(),
                      {rotary_dims, max_pos, d_table->as<float>()});
        ExpectNear(Download<float>(*cuda_, *d_x), expected, 1e-6, 1e-6, "rotary");
      }
    }
  }
}

// Pools compared byte for byte with those of the same step without its padding rows (the layout
// is the backend's own, but both writes use it).
TEST_F(CudaKernelsTest, WriteKvCacheSkipsRowsWithNegativeSlots) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    testing::ExpectNegativeSlotsWriteNothing(*cuda_, dtype);
  }
}

}  // namespace
}  // namespace mlkv
