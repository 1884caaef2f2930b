// Paged-cache invariance of the model: the same tokens and log-probabilities whatever the block
// size, wherever the blocks live, whether a sequence runs alone or batched with others, and
// whether its prompt is fed whole or in chunks. Plus the model's refusal of malformed batches.
#include <filesystem>

#include "engine/model.h"
#include "engine/offline_runner.h"
#include "engine/random_model.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace mlkv {
namespace {

struct Variant {
  const char* name;
  int kv_heads, kv_layers;
  const char* sharing_rope;
  bool parallel_residual;
};

std::string MakeModel(const Variant& v) {
  nlohmann::json json = {{"hidden_size", 64},         {"num_attention_heads", 4},
                         {"num_hidden_layers", 5},    {"intermediate_size", 96},
                         {"vocab_size", 97},          {"max_position_embeddings", 256},
                         {"rotary_pct", 0.5},         {"num_key_value_heads", v.kv_heads},
                         {"num_key_value_layers", v.kv_layers},
                         {"kv_sharing_rope", v.sharing_rope},
                         {"use_parallel_residual", v.parallel_residual},
                         {"eos_token_id", 0}};
  auto config = ModelConfig::FromJson(json);
  EXPECT_TRUE(config.ok()) << config.status();
  const std::string dir = ::testing::TempDir() + "/model_test_" + v.name;
  std::filesystem::create_directories(dir);
  absl::Status written = WriteRandomModel(*config, /*seed=*/7, DType::kF32, dir);
  EXPECT_TRUE(written.ok()) << written;
  return dir;
}

std::vector<int32_t> Prompt(int n, int salt) {
  std::vector<int32_t> prompt;
  for (int i = 0; i < n; ++i) prompt.push_back(1 + (i * 31 + salt * 17) % 96);
  return prompt;
}

SequenceRequest Greedy(std::vector<int32_t> prompt) {
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = 24;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  r.want_prompt_logprobs = true;
  return r;
}

class ModelInvarianceTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    backend_ = CreateCpuBackend();
    auto model = Model::Load(MakeModel(GetParam()), backend_.get());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }

  std::vector<SequenceResult> Run(const std::vector<SequenceRequest>& requests,
                                  const OfflineRunnerOptions& options) {
    auto results = OfflineRunner(model_.get(), options).Run(requests);
    EXPECT_TRUE(results.ok()) << results.status();
    return results.ok() ? *results : std::vector<SequenceResult>{};
  }

  static void ExpectSame(const SequenceResult& a, const SequenceResult& b, const std::string& what) {
    EXPECT_EQ(a.output_tokens, b.output_tokens) << what;
    ASSERT_EQ(a.output_logprobs.size(), b.output_logprobs.size()) << what;
    for (size_t i = 0; i < a.output_logprobs.size(); ++i) {
      EXPECT_NEAR(a.output_logprobs[i], b.output_logprobs[i], 1e-5) << what << " output " << i;
    }
    ASSERT_EQ(a.prompt_logprobs.size(), b.prompt_logprobs.size()) << what;
    for (size_t i = 0; i < a.prompt_logprobs.size(); ++i) {
      EXPECT_NEAR(a.prompt_logprobs[i], b.prompt_logprobs[i], 1e-5) << what << " prompt " << i;
    }
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
};

TEST_P(ModelInvarianceTest, PagingBatchingAndChunkingDoNotChangeResults) {
  const SequenceRequest a = Greedy(Prompt(40, 1));
  const SequenceResult baseline = Run({a}, {})[0];
  ASSERT_EQ(baseline.output_tokens.size(), 24u);
  ASSERT_EQ(baseline.prompt_logprobs.size(), 39u);

  for (int64_t block_size : {1, 32}) {
    OfflineRunnerOptions options;
    options.block_size = block_size;
    ExpectSame(baseline, Run({a}, options)[0], "block size " + std::to_string(block_size));
  }
  OfflineRunnerOptions shuffled;
  shuffled.shuffle_blocks_seed = 99;
  ExpectSame(baseline, Run({a}, shuffled)[0], "shuffled blocks");
  OfflineRunnerOptions chunked;
  chunked.prefill_chunk = 7;
  ExpectSame(baseline, Run({a}, chunked)[0], "prompt in chunks of 7");
  // Batched with a longer and a shorter sequence, blocks shuffled, prompts chunked.
  OfflineRunnerOptions mixed;
  mixed.shuffle_blocks_seed = 5;
  mixed.prefill_chunk = 11;
  mixed.block_size = 4;
  const auto batched = Run({Greedy(Prompt(57, 2)), a, Greedy(Prompt(3, 3))}, mixed);
  ASSERT_EQ(batched.size(), 3u);
  ExpectSame(baseline, batched[1], "batched with others");
}

TEST_P(ModelInvarianceTest, SeededSamplingIsReproducibleAloneOrBatched) {
  SequenceRequest a = Greedy(Prompt(20, 4));
  a.sampling.temperature = 0.9f;
  a.sampling.top_p = 0.9f;
  a.sampling.seed = 1234;
  const SequenceResult alone = Run({a}, {})[0];
  const auto batched = Run({Greedy(Prompt(9, 5)), a}, {});
  EXPECT_EQ(alone.output_tokens, batched[1].output_tokens);
  a.sampling.seed = 4321;
  EXPECT_NE(alone.output_tokens, Run({a}, {})[0].output_tokens);
}

TEST_P(ModelInvarianceTest, Bf16CacheStaysCloseToF32) {
  SequenceRequest a = Greedy(Prompt(60, 6));
  a.max_tokens = 0;
  const SequenceResult f32 = Run({a}, {})[0];
  OfflineRunnerOptions options;
  options.kv_dtype = DType::kBF16;
  const SequenceResult bf16 = Run({a}, options)[0];
  ASSERT_EQ(f32.prompt_logprobs.size(), bf16.prompt_logprobs.size());
  double max_diff = 0.0;
  for (size_t i = 0; i < f32.prompt_logprobs.size(); ++i) {
    max_diff = std::max<double>(max_diff, std::abs(f32.prompt_logprobs[i] - bf16.prompt_logprobs[i]));
  }
  // bf16 keeps 8 significant bits (relative error 2^-9 per element); over this small model the
  // log-probabilities move by a few hundredths at most. Zero difference would mean bf16 was
  // never used.
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.05);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ModelInvarianceTest,
    ::testing::Values(Variant{"mha", 4, 5, "unrotated", true}, Variant{"gqa", 2, 5, "unrotated", true},
                      Variant{"mlkv_uneven", 2, 3, "unrotated", false},
                      Variant{"mlkv_rotated", 1, 2, "rotated", true},
                      Variant{"mlkv_1", 1, 1, "unrotated", true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ModelBadInputTest, RefusesOutOfRangeTokensPositionsAndSlots) {
  auto backend = CreateCpuBackend();
  auto model = Model::Load(MakeModel(Variant{"bad_input", 2, 2, "unrotated", true}), backend.get());
  ASSERT_TRUE(model.ok()) << model.status();
  OfflineRunner runner(model->get(), {});
  SequenceRequest bad = Greedy({5, 97});
  auto result = runner.Run({bad});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("token id 97"), std::string::npos) << result.status();
  EXPECT_FALSE(runner.Run({Greedy({})}).ok());
  SequenceRequest too_long = Greedy(Prompt(250, 1));
  too_long.max_tokens = 10;
  EXPECT_NE(runner.Run({too_long}).status().message().find("max_position_embeddings"),
            std::string::npos);

  auto cache = KvCache::Create((*model)->config(), {16, 2, DType::kF32}, backend.get());
  ASSERT_TRUE(cache.ok());
  StepBatch batch{{1}, {0}, {999}, {0, 1}, {1}, {0}, 1, {0}};  // slot 999 of 32
  std::vector<float> logits;
  EXPECT_FALSE((*model)->Forward(batch, **cache, &logits).ok());
  batch.slot_mapping = {0};
  EXPECT_TRUE((*model)->Forward(batch, **cache, &logits).ok());
  batch.positions = {300};
  EXPECT_FALSE((*model)->Forward(batch, **cache, &logits).ok());
}

}  // namespace
}  // namespace mlkv
