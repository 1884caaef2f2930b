// The whole forward pass (engine/model.h) on the CUDA backend against the CPU backend: the same
// seeded random weights, one sequence fed through a shuffled paged cache in prompt chunks and
// decode steps, then two sequences batched in one step. MHA, GQA and MLKV variants in both
// kv_sharing_rope modes, f32/f16/bf16 caches and f32/f16/bf16 weights, on either attention
// kernel. Skipped where no CUDA device is visible.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>

#include "engine/model.h"
#include "engine/testing/decode_steps.h"
#include "engine/testing/paged_score.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"
#include "model/random_model.h"

namespace mlkv {
namespace {

using ::mlkv::testing::Layout;
using ::mlkv::testing::Score;

struct Variant {
  const char* name;
  int kv_heads, kv_layers;
  const char* sharing_rope;
  DType kv_dtype;
  DType weight_dtype = DType::kF32;
  cuda::AttentionKernel attention = cuda::AttentionKernel::kSimt;
  int head_dim = 16;  // of 8 query heads; the tensor-core kernel serves 64 and up
};

// How gtest (and so the CTest test names) prints a variant, instead of its raw bytes.
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

ModelConfig MakeConfig(const Variant& v) {
  auto config = ModelConfig::FromJson({{"hidden_size", 8 * v.head_dim},
                                       {"num_attention_heads", 8},
                                       {"num_hidden_layers", 5},
                                       {"intermediate_size", 200},
                                       {"vocab_size", 131},
                                       {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.25},
                                       {"num_key_value_heads", v.kv_heads},
                                       {"num_key_value_layers", v.kv_layers},
                                       {"kv_sharing_rope", v.sharing_rope},
                                       {"use_parallel_residual", true},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

class CudaModelTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device visible: the model was NOT run on CUDA";
    }
    CudaBackendOptions options;
    options.attention_kernel = GetParam().attention;
    auto cuda = CreateCudaBackend(options);
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
    config_ = MakeConfig(GetParam());
    const ModelHostWeights weights = RandomModelWeights(config_, 7);
    const DType weight_dtype = GetParam().weight_dtype;
    auto cpu_model = Model::Create(config_, weights, cpu_.get(), weight_dtype);
    auto cuda_model = Model::Create(config_, weights, cuda_.get(), weight_dtype);
    auto cpu_f32_model = Model::Create(config_, weights, cpu_.get());
    ASSERT_TRUE(cpu_model.ok()) << cpu_model.status();
    ASSERT_TRUE(cuda_model.ok()) << cuda_model.status();
    ASSERT_TRUE(cpu_f32_model.ok()) << cpu_f32_model.status();
    cpu_model_ = std::move(*cpu_model);
    cuda_model_ = std::move(*cuda_model);
    cpu_f32_model_ = std::move(*cpu_f32_model);
  }

  std::unique_ptr<Backend> cpu_ = CreateCpuBackend(), cuda_;
  ModelConfig config_;
  std::unique_ptr<Model> cpu_model_, cuda_model_;
  std::unique_ptr<Model> cpu_f32_model_;  // float32 weights: what narrow weights drift from
};

// float32 everywhere (no TF32): the backends differ only in summation order, ~1e-6 relative per
// op; 1e-4 is the tolerance the CPU engine meets against a float64 reference. With a 16-bit
// cache both read rounded keys and values, but a key computed a few ulps apart can round to the
// neighbouring 16-bit value (2^-8 relative in bf16, 2^-11 in f16), so those cases get 2e-3 and
// 5e-4. With f16/bf16 weights CUDA also rounds each GEMM's input to that dtype (the CPU keeps it
// float32): an error of the same size as rounding the weights themselves, so CUDA may differ from
// the CPU by up to twice what the narrow weights move the CPU's own scores from float32 weights
// (measured here on the same tokens), on top of the cache's tolerance. The tensor-core attention
// kernel also rounds queries and softmax weights to the cache's dtype, an error of the size of
// rounding the cache itself: it may add twice what the 16-bit cache moves the CPU's scores from a
// float32 cache.
TEST_P(CudaModelTest, ScoresMatchCpuInChunksAndDecodeSteps) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 75; ++i) tokens.push_back(1 + (i * 31 + 7) % 130);
  const DType kv = GetParam().kv_dtype;
  double tolerance = kv == DType::kF32 ? 1e-4 : kv == DType::kF16 ? 5e-4 : 2e-3;
  // The largest difference between the CPU's scores of two layouts.
  auto drift = [&](Model& model, Model& reference, const Layout& layout,
                   const Layout& reference_layout) {
    const auto scores = Score(model, tokens, layout);
    const auto reference_scores = Score(reference, tokens, reference_layout);
    double most = 0.0;
    for (size_t i = 0; i < scores.size(); ++i) {
      most = std::max<double>(most, std::abs(scores[i] - reference_scores[i]));
    }
    return most;
  };
  if (GetParam().weight_dtype != DType::kF32) {
    const Layout layout{16, 75, false, kv};
    const double weights = drift(*cpu_model_, *cpu_f32_model_, layout, layout);
    ASSERT_GT(weights, 0.0) << "the narrow weights were not used";
    tolerance += 2.0 * weights;
    std::printf("[ info ] %s weights move the CPU's scores by up to %.2e; tolerance %.2e\n",
                DTypeName(GetParam().weight_dtype), weights, tolerance);
  }
  if (GetParam().attention == cuda::AttentionKernel::kTensorCore) {
    const double cache = drift(*cpu_model_, *cpu_model_, Layout{16, 75, false, kv},
                               Layout{16, 75, false, DType::kF32});
    ASSERT_GT(cache, 0.0) << "the 16-bit cache rounds nothing";
    tolerance += 2.0 * cache;
    std::printf("[ info ] a %s cache moves the CPU's scores by up to %.2e; tolerance %.2e\n",
                DTypeName(kv), cache, tolerance);
  }
  for (int64_t chunk : {75, 13, 1}) {
    const auto expected = Score(*cpu_model_, tokens, Layout{16, chunk, true, kv});
    const auto actual = Score(*cuda_model_, tokens, Layout{16, chunk, true, kv});
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      ASSERT_NEAR(actual[i], expected[i], tolerance) << "chunk " << chunk << ", token " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, CudaModelTest,
    ::testing::Values(Variant{"mha", 8, 5, "unrotated", DType::kF32},
                      Variant{"gqa", 2, 5, "unrotated", DType::kF32},
                      Variant{"mlkv", 1, 2, "unrotated", DType::kF32},
                      Variant{"mlkv_rotated", 1, 2, "rotated", DType::kF32},
                      Variant{"mlkv_uneven_bf16", 2, 3, "unrotated", DType::kBF16},
                      Variant{"mqa_bf16", 1, 5, "rotated", DType::kBF16},
                      Variant{"mlkv_f16", 1, 2, "unrotated", DType::kF16},
                      Variant{"mha_f16_weights", 8, 5, "unrotated", DType::kF32, DType::kF16},
                      Variant{"mlkv_all_f16", 1, 2, "unrotated", DType::kF16, DType::kF16},
                      Variant{"gqa_all_bf16", 2, 5, "rotated", DType::kBF16, DType::kBF16},
                      // The tensor-core attention kernel: chunks of 75 and 13 rows, then decode.
                      Variant{"mlkv_f16_mma", 1, 2, "unrotated", DType::kF16, DType::kF32,
                              cuda::AttentionKernel::kTensorCore, 64},
                      Variant{"gqa_bf16_mma", 2, 5, "rotated", DType::kBF16, DType::kF32,
                              cuda::AttentionKernel::kTensorCore, 64},
                      Variant{"mha_all_f16_mma", 8, 5, "unrotated", DType::kF16, DType::kF16,
                              cuda::AttentionKernel::kTensorCore, 128}),
    [](const auto& info) { return std::string(info.param.name); });

// Decode graphs on CUDA: captured at each bucket's first step and replayed after, they give the
// tokens of an eager CUDA model fed the same steps (greedy and sampled rows, batch sizes between
// buckets), and they were really captured.
TEST(CudaDecodeGraphTest, ReplayedStepsGiveTheEagerTokens) {
  if (CudaDeviceCount() == 0) {
    GTEST_SKIP() << "no CUDA device visible: decode graphs were NOT captured or replayed";
  }
  auto cuda = CreateCudaBackend();
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  testing::ModelAndCache eager = testing::MakeModelAndCache(cuda->get(), false);
  testing::ModelAndCache graphed = testing::MakeModelAndCache(cuda->get(), true);
  testing::ExpectSameDecodeTokens(eager, graphed);
  // Buckets 1, 4, 8 and 12 (batches of 1, 3, 5 and 8, and 11).
  EXPECT_EQ(graphed.model->num_decode_graphs(), 4);
}

}  // namespace
}  // namespace mlkv
