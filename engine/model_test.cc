// The model over the paged cache: the same log-probabilities whatever the block size, wherever
// the blocks live and however the prompt is cut into chunks; a bf16 cache stays close; and the
// model refuses malformed batches. (Batching with other sequences, prefix reuse and preemption
// are covered through the engine in engine_test.cc.)
#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/random_model.h"
#include "engine/testing/paged_score.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

using ::mlkv::testing::Layout;
using ::mlkv::testing::Score;

struct Variant {
  const char* name;
  int kv_heads, kv_layers;
  const char* sharing_rope;
  bool parallel_residual;
};

ModelConfig MakeConfig(const Variant& v) {
  auto config = ModelConfig::FromJson(
      {{"hidden_size", 64},         {"num_attention_heads", 4},
       {"num_hidden_layers", 5},    {"intermediate_size", 96},
       {"vocab_size", 97},          {"max_position_embeddings", 256},
       {"rotary_pct", 0.5},         {"num_key_value_heads", v.kv_heads},
       {"num_key_value_layers", v.kv_layers}, {"kv_sharing_rope", v.sharing_rope},
       {"use_parallel_residual", v.parallel_residual}, {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(1 + (i * 31 + 7) % 96);
  return tokens;
}

class ModelPagingTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    const ModelConfig config = MakeConfig(GetParam());
    auto model = Model::Create(config, RandomModelWeights(config, 7), backend_.get());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<Backend> backend_ = CreateCpuBackend();
  std::unique_ptr<Model> model_;
};

TEST_P(ModelPagingTest, BlockSizePlacementAndChunkingDoNotChangeScores) {
  const auto tokens = Tokens(70);
  const std::vector<float> baseline = Score(*model_, tokens, {16, 70, false});
  ASSERT_EQ(baseline.size(), 69u);
  for (const Layout& layout : {Layout{1, 70, false}, Layout{32, 70, false}, Layout{16, 70, true},
                               Layout{16, 1, true}, Layout{4, 7, true}, Layout{32, 13, true},
                               Layout{15, 16, true}, Layout{17, 5, false}}) {
    const std::vector<float> scores = Score(*model_, tokens, layout);
    ASSERT_EQ(scores.size(), baseline.size());
    for (size_t i = 0; i < scores.size(); ++i) {
      ASSERT_NEAR(scores[i], baseline[i], 1e-5)
          << "block size " << layout.block_size << ", chunk " << layout.chunk
          << (layout.shuffle ? ", shuffled" : "") << ", token " << i;
    }
  }
}

TEST_P(ModelPagingTest, Bf16CacheStaysCloseToF32) {
  const auto tokens = Tokens(60);
  const std::vector<float> f32 = Score(*model_, tokens, {16, 60, false});
  const std::vector<float> bf16 = Score(*model_, tokens, {16, 60, false, DType::kBF16});
  double max_diff = 0.0;
  for (size_t i = 0; i < f32.size(); ++i) max_diff = std::max<double>(max_diff, std::abs(f32[i] - bf16[i]));
  // bf16 keeps 8 significant bits (2^-9 relative per value); on this small model the
  // log-probabilities move by a few hundredths at most. Zero would mean bf16 was never used.
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.05);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ModelPagingTest,
    ::testing::Values(Variant{"mha", 4, 5, "unrotated", true}, Variant{"gqa", 2, 5, "unrotated", true},
                      Variant{"mlkv_uneven", 2, 3, "unrotated", false},
                      Variant{"mlkv_rotated", 1, 2, "rotated", true},
                      Variant{"mlkv_1", 1, 1, "unrotated", true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ModelBadInputTest, RefusesOutOfRangeTokensPositionsSlotsAndBlocks) {
  auto backend = CreateCpuBackend();
  const ModelConfig config = MakeConfig({"bad", 2, 2, "unrotated", true});
  auto model = Model::Create(config, RandomModelWeights(config, 1), backend.get());
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = KvCache::Create(config, {16, 2, DType::kF32}, backend.get());
  ASSERT_TRUE(cache.ok());
  const StepBatch good{{1}, {0}, {0}, {0, 1}, {1}, {0}, 1, {0}};
  std::vector<float> logits;
  ASSERT_TRUE((*model)->Forward(good, **cache, &logits).ok());
  auto refused = [&](StepBatch batch, const std::string& text) {
    absl::Status status = (*model)->Forward(batch, **cache, &logits);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
  };
  StepBatch b = good;
  b.token_ids = {97};
  refused(b, "token id 97");
  b = good;
  b.slot_mapping = {999};
  refused(b, "KV slot 999");
  b = good;
  b.positions = {300};
  refused(b, "position 300");
  b = good;
  b.block_tables = {7};
  refused(b, "block id 7");
  b = good;
  b.context_lens = {5};
  refused(b, "malformed");
  b = good;
  b.logits_rows = {3};
  refused(b, "logits row");
  refused(StepBatch{}, "empty batch");
}

}  // namespace
}  // namespace mlkv
