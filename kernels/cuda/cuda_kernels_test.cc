// Every CUDA op against the CPU backend (kernels/cpu, itself tested against double-precision
// sums in cpu_kernels_test.cc) on the same random inputs: odd sizes, shuffled block tables,
// contexts of 1 and block_size +- 1, NaN in every unused cache slot, group sizes 1-16, forced and
// planned split-KV, f32/f16/bf16 caches, f16/bf16 weights, and sampling (the same tokens as the CPU
// reference wherever rounding cannot tell them apart, greedy rows among them), padding rows of
// the cache write, and graph capture and replay. Without a visible CUDA device every test is
// skipped.
//
// The CUDA cache layout differs from the CPU's, so caches are never compared directly: both
// backends write the same keys and values through their own WriteKvCache and attention outputs
// are compared.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/sample_rows.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"
#include "kernels/testing/negative_slots.h"
#include "kernels/testing/random_inputs.h"

namespace mlkv {
namespace {

using testing::CosSinTable;
using testing::NarrowBits;
using testing::RandomVector;
using testing::RoundTo;

// Both backends, and host vectors moved onto either. A test fixture so that SetUp can skip.
class CudaKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device visible (cudaGetDeviceCount reports none, or this build "
                      "has no CUDA): the CUDA kernels were NOT run";
    }
    cpu_ = CreateCpuBackend();
    auto cuda = CreateCudaBackend();
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
  }

  template <typename T>
  static std::unique_ptr<DeviceBuffer> Upload(Backend& backend, const std::vector<T>& host) {
    auto buffer = backend.Allocate(host.size() * sizeof(T));
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    backend.CopyToDevice((*buffer)->data(), host.data(), host.size() * sizeof(T));
    return std::move(*buffer);
  }
  template <typename T>
  static std::vector<T> Download(Backend& backend, DeviceBuffer& buffer) {
    std::vector<T> host(buffer.bytes() / sizeof(T));
    backend.CopyToHost(host.data(), buffer.data(), host.size() * sizeof(T));
    return host;
  }

  std::unique_ptr<Backend> cpu_, cuda_;
};

void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected, double abs,
                double rel, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], abs + rel * std::fabs(expected[i]))
        << what << " at element " << i;
  }
}

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

// Float32 GEMMs in two summation orders. An indexing mistake gives errors of order one; rounding
// stays far below 3e-6 * k (each of the k products is ~1 and float32's epsilon is 6e-8).
TEST_F(CudaKernelsTest, LinearMatchesCpu) {
  std::mt19937 rng(1);
  for (int64_t rows : {1, 3, 17, 64}) {
    for (int64_t k : {1, 37, 256}) {
      for (int64_t n : {1, 29, 300}) {
        for (bool with_bias : {false, true}) {
          auto in = RandomVector(rows * k, rng), w = RandomVector(n * k, rng),
               b = RandomVector(n, rng);
          std::vector<float> expected(rows * n);
          cpu_->Linear(in.data(), rows, k, w.data(), with_bias ? b.data() : nullptr, n,
                       expected.data());
          auto d_in = Upload(*cuda_, in), d_w = Upload(*cuda_, w), d_b = Upload(*cuda_, b);
          auto d_out = Upload(*cuda_, std::vector<float>(rows * n, std::nanf("")));
          cuda_->Linear(d_in->as<float>(), rows, k, d_w->as<float>(),
                        with_bias ? d_b->as<float>() : nullptr, n, d_out->as<float>());
          ExpectNear(Download<float>(*cuda_, *d_out), expected, 3e-6 * k + 1e-5, 0,
                     absl::StrCat("linear ", rows, "x", k, "x", n));
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
  cpu_->Linear(in.data(), rows, k, w.data(), b.data(), n, expected.data());
  auto d_in = Upload(**tf32, in), d_w = Upload(**tf32, w), d_b = Upload(**tf32, b);
  auto d_out = Upload(**tf32, std::vector<float>(rows * n));
  (*tf32)->Linear(d_in->as<float>(), rows, k, d_w->as<float>(), d_b->as<float>(), n,
                  d_out->as<float>());
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
                       expected.data());
          auto d_in = Upload(*cuda_, in), d_w = Upload(*cuda_, stored), d_b = Upload(*cuda_, b);
          auto d_out = Upload(*cuda_, std::vector<float>(rows * n, std::nanf("")));
          cuda_->Linear(d_in->as<float>(), rows, k, WeightView(d_w->data(), dtype),
                        d_b->as<float>(), n, d_out->as<float>());
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

// The CPU's polynomial erf/tanh are within 5e-7 absolute of libm, CUDA's erff/tanhf within a
// few ulps. GELU scales that error by 0.5 |x|, up to ~8 for these N(0, 3) inputs (5 sigma):
// 5e-6 absolute plus 1e-6 relative covers both.
TEST_F(CudaKernelsTest, GeluAndAddMatchCpu) {
  std::mt19937 rng(4);
  for (int64_t count : {1, 1000, 100003}) {
    for (GeluKind kind : {GeluKind::kExact, GeluKind::kTanh}) {
      auto x = RandomVector(count, rng, 3.0f);
      auto expected = x;
      cpu_->Gelu(expected.data(), count, kind);
      auto d_x = Upload(*cuda_, x);
      cuda_->Gelu(d_x->as<float>(), count, kind);
      ExpectNear(Download<float>(*cuda_, *d_x), expected, 5e-6, 1e-6, "gelu");
    }
    auto x = RandomVector(count, rng), y = RandomVector(count, rng);
    auto expected = x;
    cpu_->Add(expected.data(), y.data(), count);
    auto d_x = Upload(*cuda_, x), d_y = Upload(*cuda_, y);
    cuda_->Add(d_x->as<float>(), d_y->as<float>(), count);
    EXPECT_EQ(Download<float>(*cuda_, *d_x), expected);  // one rounding each: identical
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
    for (int i = 0; i < 5; ++i) logits[1 * cols + col(rng)] = std::nanf("");  // row 1: NaNs
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

// SampleRows on both backends. The CUDA kernel sums the same double p in another order (a
// reduction, a scan), so its running sums differ from the CPU's by ~1e-16 of the mass per
// addition: rows whose draw lies closer than kMinMargin to a boundary of the walk (the CPU
// reference's margin) may legitimately differ and are not compared.
class CudaSampleRowsTest : public CudaKernelsTest {
 protected:
  static constexpr double kMinMargin = 1e-9;

  // Expects equal tokens on every row whose margin exceeds kMinMargin; returns how many there
  // were.
  int ExpectTokensMatchCpu(const std::vector<float>& logits, int64_t cols,
                           const std::vector<RowSampling>& params, const std::string& what) {
    const int64_t rows = std::ssize(params);
    auto d_logits = Upload(*cuda_, logits), d_params = Upload(*cuda_, params);
    auto d_out = Upload(*cuda_, std::vector<int32_t>(rows, -1));
    cuda_->SampleRows(d_logits->as<float>(), rows, cols, d_params->as<RowSampling>(),
                      d_out->as<int32_t>());
    const std::vector<int32_t> got = Download<int32_t>(*cuda_, *d_out);
    int compared = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const RowSampling& p = params[r];
      const cpu::SampledToken want = cpu::SampleRow(logits.data() + r * cols, cols, p);
      if (want.margin <= kMinMargin) continue;
      ++compared;
      EXPECT_EQ(got[r], want.token)
          << what << " row " << r << ": temperature " << p.temperature << " top_k " << p.top_k
          << " top_p " << p.top_p << " min_p " << p.min_p << " seed " << p.seed << " draw "
          << p.draw << " margin " << want.margin;
    }
    return compared;
  }
};

// Vocabulary-wide rows of ordinary logits under every mix of the filters.
TEST_F(CudaSampleRowsTest, MatchesCpuOnVocabularyRows) {
  constexpr int64_t kRows = 512, kCols = 50304;
  std::mt19937 rng(10);
  const std::vector<float> logits = RandomVector(kRows * kCols, rng, 3.0f);
  const float temperatures[] = {0.0f, 0.3f, 0.7f, 1.0f, 1.5f};  // 0: greedy, the filters ignored
  const int32_t top_ks[] = {0, 1, 50, 1000};
  const float top_ps[] = {1.0f, 0.9f, 0.5f};
  const float min_ps[] = {0.0f, 0.05f};
  std::vector<RowSampling> params(kRows);
  for (int64_t r = 0; r < kRows; ++r) {  // every one of the 120 mixes, 4 or 5 times
    params[r].temperature = temperatures[r % 5];
    params[r].top_k = top_ks[r / 5 % 4];
    params[r].top_p = top_ps[r / 20 % 3];
    params[r].min_p = min_ps[r / 60 % 2];
    params[r].seed = 0x9E3779B97F4A7C15u * static_cast<uint64_t>(r + 1);
    params[r].draw = static_cast<uint64_t>(131 * r + 7);
  }
  // A row is within 1e-9 of one of its boundaries with probability ~1e-4 (a boundary per token).
  EXPECT_GE(ExpectTokensMatchCpu(logits, kCols, params, "vocabulary"), 500);
}

// Non-finite rows, single columns, ties (-0 and +0 among them) across the kernel's 1024-element
// tiles, exact top-p boundaries, and widths that are not a multiple of the tile; and each of these
// rows again at temperature 0, whose answer is the argmax whatever the other fields hold.
TEST_F(CudaSampleRowsTest, MatchesCpuOnEdgeRows) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::mt19937 rng(11);
  for (int64_t cols : {1, 1500, 50304}) {
    std::vector<std::vector<float>> rows;
    std::vector<RowSampling> params;
    auto add = [&](std::vector<float> row, RowSampling p) {
      p.seed = 1000 + rows.size();
      p.draw = 3 * rows.size();
      rows.push_back(std::move(row));
      params.push_back(p);
    };
    auto random_row = [&] { return RandomVector(cols, rng, 3.0f, -20.0f); };  // all below 0
    const RowSampling plain;
    RowSampling greedy;  // top_k = 1
    greedy.top_k = 1;

    add(std::vector<float>(cols, -inf), plain);
    add(std::vector<float>(cols, nan), plain);
    std::vector<float> row = random_row();
    row[cols / 2] = inf;
    add(row, plain);
    row = random_row();
    row[cols - 1] = 5.0f;
    add(row, plain);
    for (size_t i = 0; i < row.size(); i += 2) row[i] = i % 4 == 0 ? -inf : nan;
    add(row, plain);  // masked and NaN logits among candidates
    RowSampling cold;
    cold.temperature = 1e-30f;  // every p but the top's underflows to 0
    add(random_row(), cold);
    if (cols > 1) {
      std::vector<float> mix(cols, nan);
      mix[cols - 1] = -inf;
      add(mix, plain);
      // The max twice, as -0 and +0, the second copy in a later tile: equal logits, so top_k =
      // 1 keeps the lower index.
      for (bool negative_first : {true, false}) {
        row = random_row();
        row[1] = negative_first ? -0.0f : 0.0f;
        row[cols - 1] = negative_first ? 0.0f : -0.0f;
        add(row, greedy);
      }
      // Equal logits: top-k across tiles, and top-p on exact (integer) masses.
      RowSampling top_k = plain;
      top_k.top_k = static_cast<int32_t>(cols * 3 / 4);
      add(std::vector<float>(cols, 1.5f), top_k);
      RowSampling top_p = plain;
      top_p.top_p = 0.5f;
      add(std::vector<float>(cols, -2.0f), top_p);
      RowSampling mixed;
      mixed.temperature = 0.8f;
      mixed.top_k = 40;
      mixed.top_p = 0.9f;
      mixed.min_p = 0.02f;
      add(random_row(), mixed);
    }
    for (size_t i = 0, sampled = rows.size(); i < sampled; ++i) {
      RowSampling greedy_copy = params[i];
      greedy_copy.temperature = 0.0f;
      add(rows[i], greedy_copy);
    }
    std::vector<float> flat;
    for (const std::vector<float>& r : rows) flat.insert(flat.end(), r.begin(), r.end());
    // Every edge row's draw is exact or far from a boundary: all of them are compared.
    EXPECT_EQ(ExpectTokensMatchCpu(flat, cols, params, absl::StrCat("cols ", cols)),
              std::ssize(params));
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

struct AttentionCase {
  int64_t num_heads, num_kv_heads, head_dim, block_size;
  DType dtype;
  bool rotate_keys_on_read;
  int64_t split_tokens;  // 0: the planner's choice (which splits this test's 600-token row)
};

constexpr int64_t kNoSplit = int64_t{1} << 20;  // a split longer than any context here

std::string Describe(const AttentionCase& c) {
  return absl::StrCat("h", c.num_heads, "kv", c.num_kv_heads, "d", c.head_dim, "bs",
                      c.block_size, DTypeName(c.dtype), c.rotate_keys_on_read ? "rot" : "",
                      "split", c.split_tokens);
}

std::string CaseName(const ::testing::TestParamInfo<AttentionCase>& info) {
  return Describe(info.param);
}

// How gtest (and so the CTest test names) prints a case, instead of its raw bytes.
void PrintTo(const AttentionCase& c, std::ostream* os) { *os << Describe(c); }

class CudaAttentionTest : public CudaKernelsTest,
                          public ::testing::WithParamInterface<AttentionCase> {};

// One step over six sequences: decodes at context 1, block_size - 1, block_size, block_size + 1
// and 600 (long enough for the planner to split), and a prompt chunk of 7 rows on top of a
// 2 x block_size + 3 token prefix. Blocks are scattered over a larger pool in random order; every
// slot first holds NaN, so reading any slot past a sequence's end would show.
//
// Both backends read the same cached values (f16 and bf16 round to nearest even on both), so
// the only differences are float32 summation order and the CPU's polynomial exp (relative error
// 3e-7). Outputs are convex combinations of values ~N(0, 1): 5e-5 is tens of ulps of headroom,
// while a wrong or missing token moves outputs by ~1e-2 or more.
TEST_P(CudaAttentionTest, MatchesCpu) {
  const AttentionCase c = GetParam();
  CudaBackendOptions options;
  options.attention_split_tokens = c.split_tokens;
  auto cuda = CreateCudaBackend(options);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  Backend& gpu = **cuda;
  std::mt19937 rng(7);
  const int64_t d = c.head_dim, bs = c.block_size, rotary_dims = std::min<int64_t>(d / 2 * 2, 16);
  const std::vector<int32_t> context = {1, static_cast<int32_t>(std::max<int64_t>(bs - 1, 1)),
                                        static_cast<int32_t>(bs), static_cast<int32_t>(bs + 1),
                                        600, static_cast<int32_t>(2 * bs + 3 + 7)};
  const std::vector<int32_t> new_tokens = {1, 1, 1, 1, 1, 7};
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
    for (int64_t b = 0; b < blocks_needed[s]; ++b) block_tables[s * max_blocks + b] = physical[next++];
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
  for (int64_t s = 0; s < num_seqs; ++s) {
    std::vector<int64_t> slots(context[s]);
    for (int64_t t = 0; t < context[s]; ++t) {
      slots[t] = int64_t{block_tables[s * max_blocks + t / bs]} * bs + t % bs;
    }
    write(RandomVector(context[s] * kv_elems, rng), RandomVector(context[s] * kv_elems, rng),
          slots);
  }

  std::vector<int32_t> positions, query_start = {0};
  for (int64_t s = 0; s < num_seqs; ++s) {
    for (int32_t p = context[s] - new_tokens[s]; p < context[s]; ++p) positions.push_back(p);
    query_start.push_back(static_cast<int32_t>(positions.size()));
  }
  const int64_t rows = static_cast<int64_t>(positions.size()), q_elems = c.num_heads * d;
  auto q = RandomVector(rows * q_elems, rng);
  auto cos_sin = CosSinTable(max_pos, rotary_dims);
  const AttentionParams params{c.num_heads, 1.0f / std::sqrt(static_cast<float>(d)),
                               c.rotate_keys_on_read};

  std::vector<float> expected(rows * q_elems);
  StepBatchView cpu_batch{rows, positions.data(), nullptr, num_seqs, query_start.data(),
                          context.data(), block_tables.data(), max_blocks};
  cpu_->PagedAttention(q.data(), cpu_batch, cpu_cache, {rotary_dims, max_pos, cos_sin.data()},
                       params, expected.data());

  auto d_q = Upload(gpu, q), d_pos = Upload(gpu, positions), d_qs = Upload(gpu, query_start),
       d_ctx = Upload(gpu, context), d_tables = Upload(gpu, block_tables),
       d_table = Upload(gpu, cos_sin);
  auto d_out = Upload(gpu, std::vector<float>(rows * q_elems, std::nanf("")));
  StepBatchView gpu_batch{rows, d_pos->as<int32_t>(), nullptr, num_seqs, d_qs->as<int32_t>(),
                          d_ctx->as<int32_t>(), d_tables->as<int32_t>(), max_blocks};
  gpu.PagedAttention(d_q->as<float>(), gpu_batch, gpu_cache,
                     {rotary_dims, max_pos, d_table->as<float>()}, params, d_out->as<float>());
  ExpectNear(Download<float>(gpu, *d_out), expected, 5e-5, 0, CaseName({c, 0}));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttentionTest,
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

// A Linear with bf16 weights (which narrows its input into the backend's scratch), an Add and a
// GELU, captured once and replayed on new inputs copied into the same buffers: each replay gives
// the eager CPU results of its inputs (within LinearMatchesCpu's and GeluAndAddMatchCpu's
// tolerances). Between the replays an eager Linear grows the scratch: the graph's old buffer must
// stay valid.
TEST_F(CudaKernelsTest, CapturedOpsReplayOnNewInputs) {
  std::mt19937 rng(12);
  const int64_t rows = 5, k = 96, n = 40;
  const std::vector<uint16_t> w = NarrowBits(RandomVector(n * k, rng), DType::kBF16);
  const std::vector<float> b = RandomVector(n, rng);
  auto d_w = Upload(*cuda_, w), d_b = Upload(*cuda_, b);
  auto d_x = Upload(*cuda_, std::vector<float>(rows * k)),
       d_y = Upload(*cuda_, std::vector<float>(rows * n));
  auto d_out = Upload(*cuda_, std::vector<float>(rows * n));
  const auto run_ops = [&](Backend& backend, const WeightView& weight, const float* bias,
                           const float* x, const float* y, float* out) {
    backend.Linear(x, rows, k, weight, bias, n, out);
    backend.Add(out, y, rows * n);
    backend.Gelu(out, rows * n, GeluKind::kExact);
  };
  const auto run_on_cuda = [&] {
    run_ops(*cuda_, WeightView(d_w->data(), DType::kBF16), d_b->as<float>(), d_x->as<float>(),
            d_y->as<float>(), d_out->as<float>());
  };
  // Copies new inputs in and returns what the ops give on the CPU, whose Linear takes the input
  // rounded to bf16 as CUDA's does.
  const auto new_inputs = [&] {
    std::vector<float> x = RandomVector(rows * k, rng), y = RandomVector(rows * n, rng);
    cuda_->CopyToDevice(d_x->data(), x.data(), x.size() * sizeof(float));
    cuda_->CopyToDevice(d_y->data(), y.data(), y.size() * sizeof(float));
    for (float& v : x) v = RoundTo(v, DType::kBF16);
    std::vector<float> out(rows * n);
    run_ops(*cpu_, WeightView(w.data(), DType::kBF16), b.data(), x.data(), y.data(), out.data());
    return out;
  };
  const std::vector<float> poison(rows * n, std::nanf(""));
  const auto poison_out = [&] {
    cuda_->CopyToDevice(d_out->data(), poison.data(), poison.size() * sizeof(float));
  };
  const double tolerance = 3e-6 * k + 1e-4;

  // Eagerly first, which grows the scratch the narrowed input needs.
  std::vector<float> expected = new_inputs();
  run_on_cuda();
  ExpectNear(Download<float>(*cuda_, *d_out), expected, tolerance, 0, "eager");

  poison_out();
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  run_on_cuda();
  auto graph = cuda_->EndCapture();
  ASSERT_TRUE(graph.ok()) << graph.status();
  for (float x : Download<float>(*cuda_, *d_out)) ASSERT_TRUE(std::isnan(x)) << "captured ops ran";

  for (int replay = 0; replay < 2; ++replay) {
    expected = new_inputs();
    poison_out();
    cuda_->Replay(**graph);
    ExpectNear(Download<float>(*cuda_, *d_out), expected, tolerance, 0,
               absl::StrCat("replay ", replay));
    // An eager Linear whose narrowed input (1.5 MiB, then 3 MiB) outgrows the scratch each time,
    // which retires the buffer the graph uses.
    const int64_t big_rows = (replay + 1) * 8192;
    auto big_in = Upload(*cuda_, RandomVector(big_rows * k, rng));
    auto big_out = Upload(*cuda_, std::vector<float>(big_rows * n));
    cuda_->Linear(big_in->as<float>(), big_rows, k, WeightView(d_w->data(), DType::kBF16),
                  nullptr, n, big_out->as<float>());
    cuda_->Synchronize();
  }
}

// Misuse of capture is a status, and leaves the backend working eagerly.
TEST_F(CudaKernelsTest, CaptureOutOfOrderIsAnErrorStatus) {
  auto d_x = Upload(*cuda_, std::vector<float>{1.0f, 2.0f});
  auto d_y = Upload(*cuda_, std::vector<float>{10.0f, 20.0f});
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(cuda_->BeginCapture().ok());
  EXPECT_EQ(cuda_->BeginCapture().code(), absl::StatusCode::kFailedPrecondition);
  cuda_->Add(d_x->as<float>(), d_y->as<float>(), 2);
  ASSERT_TRUE(cuda_->EndCapture().ok());
  EXPECT_EQ(cuda_->EndCapture().status().code(), absl::StatusCode::kFailedPrecondition);
  cuda_->Add(d_x->as<float>(), d_y->as<float>(), 2);  // eagerly: once, the graph never replayed
  EXPECT_EQ(Download<float>(*cuda_, *d_x), (std::vector<float>{11.0f, 22.0f}));
}

}  // namespace
}  // namespace mlkv
