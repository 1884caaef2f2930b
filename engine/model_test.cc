// The model over the paged cache: the same log-probabilities whatever the block size, wherever
// the blocks live and however the prompt is cut into chunks; f16/bf16 caches stay close; f16/bf16
// weights are the rounded float32 model; and the model refuses malformed batches. (Batching with
// other sequences, prefix reuse and preemption are covered through the engine in engine_test.cc.)
#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "engine/testing/paged_score.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/sample_rows.h"
#include "kernels/testing/random_inputs.h"
#include "model/random_model.h"

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
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 5},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.5},
                                       {"num_key_value_heads", v.kv_heads},
                                       {"num_key_value_layers", v.kv_layers},
                                       {"kv_sharing_rope", v.sharing_rope},
                                       {"use_parallel_residual", v.parallel_residual},
                                       {"eos_token_id", 0}});
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
  for (const Layout& layout :
       {Layout{1, 70, false}, Layout{32, 70, false}, Layout{16, 70, true}, Layout{16, 1, true},
        Layout{4, 7, true}, Layout{32, 13, true}, Layout{15, 16, true}, Layout{17, 5, false}}) {
    const std::vector<float> scores = Score(*model_, tokens, layout);
    ASSERT_EQ(scores.size(), baseline.size());
    for (size_t i = 0; i < scores.size(); ++i) {
      ASSERT_NEAR(scores[i], baseline[i], 1e-5)
          << "block size " << layout.block_size << ", chunk " << layout.chunk
          << (layout.shuffle ? ", shuffled" : "") << ", token " << i;
    }
  }
}

// bf16 keeps 8 significant bits (2^-9 relative per cached value), f16 11 (2^-12): on this small
// model the log-probabilities move by a few hundredths at most with bf16, and about 8x less with
// f16. Zero would mean the 16-bit cache was never used.
TEST_P(ModelPagingTest, HalfPrecisionCachesStayCloseToF32) {
  const auto tokens = Tokens(60);
  const std::vector<float> f32 = Score(*model_, tokens, {16, 60, false});
  auto max_diff = [&](DType dtype) {
    const std::vector<float> half = Score(*model_, tokens, {16, 60, false, dtype});
    double diff = 0.0;
    for (size_t i = 0; i < f32.size(); ++i)
      diff = std::max<double>(diff, std::abs(f32[i] - half[i]));
    return diff;
  };
  const double bf16 = max_diff(DType::kBF16), f16 = max_diff(DType::kF16);
  EXPECT_GT(bf16, 0.0);
  EXPECT_LT(bf16, 0.05);
  EXPECT_GT(f16, 0.0);
  EXPECT_LT(f16, bf16);
  EXPECT_LT(f16, 0.01);
}

// The model's weight matrices and tables rounded to `dtype`, all else unchanged: what a model
// created with that weight dtype multiplies.
ModelHostWeights RoundMatrices(ModelHostWeights weights, DType dtype) {
  auto round = [&](std::vector<float>& values) {
    for (float& x : values) x = ::mlkv::testing::RoundTo(x, dtype);
  };
  round(weights.embed_in);
  round(weights.embed_out);
  for (LayerHostWeights& l : weights.layers) {
    for (auto* m : {&l.query_weight, &l.key_weight, &l.value_weight, &l.dense_weight,
                    &l.dense_h_to_4h_weight, &l.dense_4h_to_h_weight}) {
      round(*m);
    }
  }
  return weights;
}

// f16/bf16 weights are the float32 model with its matrices rounded, nothing else: scores agree
// with that model to float32 summation order, and differ from the unrounded one (else the narrow
// weights were never used) by what the rounding explains (bf16 by more than f16).
TEST_P(ModelPagingTest, NarrowWeightsAreTheFloat32ModelWithRoundedMatrices) {
  const ModelConfig config = MakeConfig(GetParam());
  const ModelHostWeights weights = RandomModelWeights(config, 7);
  const auto tokens = Tokens(40);
  const Layout layout{16, 13, true};
  const std::vector<float> f32 = Score(*model_, tokens, layout);
  std::map<DType, double> drift;
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    auto narrow = Model::Create(config, weights, backend_.get(), dtype);
    auto rounded = Model::Create(config, RoundMatrices(weights, dtype), backend_.get());
    ASSERT_TRUE(narrow.ok() && rounded.ok());
    EXPECT_EQ((*narrow)->weight_dtype(), dtype);
    const std::vector<float> got = Score(**narrow, tokens, layout);
    const std::vector<float> want = Score(**rounded, tokens, layout);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-4) << DTypeName(dtype) << " token " << i;
      drift[dtype] = std::max<double>(drift[dtype], std::abs(got[i] - f32[i]));
    }
  }
  EXPECT_GT(drift[DType::kF16], 0.0);
  EXPECT_LT(drift[DType::kF16], drift[DType::kBF16]);
  EXPECT_LT(drift[DType::kBF16], 0.1);
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelPagingTest,
                         ::testing::Values(Variant{"mha", 4, 5, "unrotated", true},
                                           Variant{"gqa", 2, 5, "unrotated", true},
                                           Variant{"mlkv_uneven", 2, 3, "unrotated", false},
                                           Variant{"mlkv_rotated", 1, 2, "rotated", true},
                                           Variant{"mlkv_1", 1, 1, "unrotated", true}),
                         [](const auto& info) { return std::string(info.param.name); });

// Argmax rows give the index of the largest logit the same rows would have returned, whether a
// batch mixes them with logits rows or not, and leave the logits rows' values unchanged; sample
// rows give the token the backend's sampling rule draws from those logits.
TEST(ModelBackendTokensTest, AreTakenFromTheSameRowsLogits) {
  auto backend = CreateCpuBackend();
  const ModelConfig config = MakeConfig({"argmax", 2, 3, "unrotated", true});
  auto model = Model::Create(config, RandomModelWeights(config, 3), backend.get());
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = KvCache::Create(config, {16, 3, DType::kF32}, backend.get());
  ASSERT_TRUE(cache.ok());
  // Three sequences of 5, 1 and 9 tokens, one block each; the last row of each is an output row.
  StepBatch batch;
  batch.query_start = {0};
  batch.max_blocks_per_seq = 1;
  std::vector<int32_t> last_rows;
  for (int32_t s = 0; s < 3; ++s) {
    const int32_t length = std::vector<int32_t>{5, 1, 9}[s];
    for (int32_t p = 0; p < length; ++p) {
      batch.token_ids.push_back(1 + (s * 13 + p * 7) % 96);
      batch.positions.push_back(p);
      batch.slot_mapping.push_back(s * 16 + p);
    }
    last_rows.push_back(static_cast<int32_t>(batch.token_ids.size()) - 1);
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.context_lens.push_back(length);
    batch.block_tables.push_back(s);
  }
  batch.logits_rows = last_rows;
  StepOutput all_logits;
  ASSERT_TRUE((*model)->Forward(batch, **cache, &all_logits).ok());
  const int64_t vocab = config.vocab_size;
  std::vector<int32_t> want;
  for (size_t r = 0; r < last_rows.size(); ++r) {
    const auto row = all_logits.logits.begin() + static_cast<int64_t>(r) * vocab;
    want.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
  }

  batch.logits_rows = {last_rows[1]};
  batch.argmax_rows = {last_rows[0], last_rows[2]};
  StepOutput mixed;
  ASSERT_TRUE((*model)->Forward(batch, **cache, &mixed).ok());
  EXPECT_EQ(mixed.tokens, (std::vector<int32_t>{want[0], want[2]}));
  ASSERT_EQ(mixed.logits.size(), static_cast<size_t>(vocab));
  EXPECT_TRUE(
      std::equal(mixed.logits.begin(), mixed.logits.end(), all_logits.logits.begin() + vocab));

  batch.logits_rows = {};
  batch.argmax_rows = last_rows;
  StepOutput greedy_only;
  ASSERT_TRUE((*model)->Forward(batch, **cache, &greedy_only).ok());
  EXPECT_EQ(greedy_only.tokens, want);
  EXPECT_TRUE(greedy_only.logits.empty());

  // Sample rows come after the argmax rows, each drawn by the backend's rule from the same row's
  // logits with its own parameters.
  const std::vector<RowSampling> params = {RowSampling{0.8f, 0, 0.9f, 0.0f, 7, 3},
                                           RowSampling{1.3f, 20, 1.0f, 0.02f, 8, 0}};
  batch.argmax_rows = {last_rows[1]};
  batch.sample_rows = {last_rows[0], last_rows[2]};
  batch.sample_params = params;
  StepOutput sampled;
  ASSERT_TRUE((*model)->Forward(batch, **cache, &sampled).ok());
  const float* logits = all_logits.logits.data();
  const int32_t drawn0 = cpu::SampleRow(logits, vocab, params[0]).token;
  const int32_t drawn2 = cpu::SampleRow(logits + 2 * vocab, vocab, params[1]).token;
  EXPECT_EQ(sampled.tokens, (std::vector<int32_t>{want[1], drawn0, drawn2}));
  EXPECT_TRUE(sampled.logits.empty());
}

TEST(ModelBadInputTest, RefusesOutOfRangeTokensPositionsSlotsAndBlocks) {
  auto backend = CreateCpuBackend();
  const ModelConfig config = MakeConfig({"bad", 2, 2, "unrotated", true});
  auto model = Model::Create(config, RandomModelWeights(config, 1), backend.get());
  ASSERT_TRUE(model.ok()) << model.status();
  auto cache = KvCache::Create(config, {16, 2, DType::kF32}, backend.get());
  ASSERT_TRUE(cache.ok());
  StepBatch good;
  good.token_ids = {1};
  good.positions = {0};
  good.slot_mapping = {0};
  good.query_start = {0, 1};
  good.context_lens = {1};
  good.block_tables = {0};
  good.max_blocks_per_seq = 1;
  good.logits_rows = {0};
  StepOutput output;
  ASSERT_TRUE((*model)->Forward(good, **cache, &output).ok());
  auto refused = [&](StepBatch batch, const std::string& text) {
    absl::Status status = (*model)->Forward(batch, **cache, &output);
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
  refused(b, "output row outside the batch");
  b = good;
  b.logits_rows = {};
  b.argmax_rows = {-1};
  refused(b, "output row outside the batch");
  b = good;
  b.logits_rows = {0, 0};  // the workspace holds one output row per token
  refused(b, "2 logits rows, 0 argmax rows and 0 sample rows for 1 tokens");
  b = good;
  b.argmax_rows = {0};
  refused(b, "1 logits rows, 1 argmax rows and 0 sample rows for 1 tokens");
  b = good;
  b.logits_rows = {};
  b.sample_rows = {0};
  refused(b, "sample_params and sample_rows differ in length");
  for (const RowSampling& bad :
       {RowSampling{-1.0f, 0, 1.0f, 0.0f, 1, 0}, RowSampling{std::nanf(""), 0, 1.0f, 0.0f, 1, 0},
        RowSampling{1.0f, -1, 1.0f, 0.0f, 1, 0}, RowSampling{1.0f, 0, 0.0f, 0.0f, 1, 0},
        RowSampling{1.0f, 0, 1.5f, 0.0f, 1, 0}, RowSampling{1.0f, 0, 1.0f, 1.0f, 1, 0}}) {
    b.sample_params = {bad};
    refused(b, "sample row parameters out of range");
  }
  refused(StepBatch{}, "empty batch");
}

}  // namespace
}  // namespace mlkv
