// The whole forward pass (engine/model.h) on the CUDA backend against the CPU backend: the same
// seeded random weights, one sequence fed through a shuffled paged cache in prompt chunks and
// decode steps, then two sequences batched in one step. MHA, GQA and MLKV variants in both
// kv_sharing_rope modes, f32 and bf16 caches. Skipped where no CUDA device is visible.
#include <algorithm>
#include <numeric>
#include <ostream>
#include <random>
#include <span>
#include <string>

#include "engine/log_softmax.h"
#include "engine/model.h"
#include "engine/random_model.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/device_info.h"

namespace mlkv {
namespace {

struct Variant {
  const char* name;
  int kv_heads, kv_layers;
  const char* sharing_rope;
  DType kv_dtype;
};

// How gtest (and so the CTest test names) prints a variant, instead of its raw bytes.
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

ModelConfig MakeConfig(const Variant& v) {
  auto config = ModelConfig::FromJson(
      {{"hidden_size", 128},        {"num_attention_heads", 8},
       {"num_hidden_layers", 5},    {"intermediate_size", 200},
       {"vocab_size", 131},         {"max_position_embeddings", 256},
       {"rotary_pct", 0.25},        {"num_key_value_heads", v.kv_heads},
       {"num_key_value_layers", v.kv_layers}, {"kv_sharing_rope", v.sharing_rope},
       {"use_parallel_residual", true}, {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

// Log-probabilities of every row's next token for one sequence of `tokens`, fed `chunk` tokens
// per step through blocks of 16 scattered over a pool three times larger than needed.
std::vector<float> Score(Model& model, const std::vector<int32_t>& tokens, int64_t chunk,
                         DType kv_dtype) {
  const int64_t n = static_cast<int64_t>(tokens.size()), bs = 16;
  const int64_t blocks = (n + bs - 1) / bs, pool = 3 * blocks;
  auto cache = KvCache::Create(model.config(), {bs, pool, kv_dtype}, &model.backend());
  EXPECT_TRUE(cache.ok()) << cache.status();
  std::vector<int32_t> table(pool);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(42));
  table.resize(blocks);
  std::vector<float> scores, logits;
  const int64_t vocab = model.config().vocab_size;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t end = std::min(n, start + chunk);
    StepBatch batch;
    batch.max_blocks_per_seq = blocks;
    batch.block_tables = table;
    batch.query_start = {0, static_cast<int32_t>(end - start)};
    batch.context_lens = {static_cast<int32_t>(end)};
    for (int64_t p = start; p < end; ++p) {
      batch.token_ids.push_back(tokens[p]);
      batch.positions.push_back(static_cast<int32_t>(p));
      batch.slot_mapping.push_back(int64_t{table[p / bs]} * bs + p % bs);
      batch.logits_rows.push_back(static_cast<int32_t>(p - start));
    }
    const absl::Status status = model.Forward(batch, **cache, &logits);
    EXPECT_TRUE(status.ok()) << status;
    for (int64_t p = start; p < end && p + 1 < n; ++p) {
      const std::span<const float> row(logits.data() + (p - start) * vocab, vocab);
      scores.push_back(LogSoftmax(row)[tokens[p + 1]]);
    }
  }
  return scores;
}

class CudaModelTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) {
      GTEST_SKIP() << "no CUDA device visible: the model was NOT run on CUDA";
    }
    auto cuda = CreateCudaBackend();
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
    config_ = MakeConfig(GetParam());
    const ModelHostWeights weights = RandomModelWeights(config_, 7);
    auto cpu_model = Model::Create(config_, weights, cpu_.get());
    auto cuda_model = Model::Create(config_, weights, cuda_.get());
    ASSERT_TRUE(cpu_model.ok()) << cpu_model.status();
    ASSERT_TRUE(cuda_model.ok()) << cuda_model.status();
    cpu_model_ = std::move(*cpu_model);
    cuda_model_ = std::move(*cuda_model);
  }

  std::unique_ptr<Backend> cpu_ = CreateCpuBackend(), cuda_;
  ModelConfig config_;
  std::unique_ptr<Model> cpu_model_, cuda_model_;
};

// float32 everywhere (no TF32): the backends differ only in summation order, ~1e-6 relative per
// op; 1e-4 is the tolerance the CPU engine meets against a float64 reference. With a bf16 cache
// both read bf16-rounded keys and values, but a key computed a few ulps apart can round to the
// neighbouring bf16 value (2^-8 relative), so that case gets 2e-3.
TEST_P(CudaModelTest, ScoresMatchCpuInChunksAndDecodeSteps) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < 75; ++i) tokens.push_back(1 + (i * 31 + 7) % 130);
  const double tolerance = GetParam().kv_dtype == DType::kF32 ? 1e-4 : 2e-3;
  for (int64_t chunk : {75, 13, 1}) {
    const auto expected = Score(*cpu_model_, tokens, chunk, GetParam().kv_dtype);
    const auto actual = Score(*cuda_model_, tokens, chunk, GetParam().kv_dtype);
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
                      Variant{"mqa_bf16", 1, 5, "rotated", DType::kBF16}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mlkv
