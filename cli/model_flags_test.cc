// EngineOptionsFromFlags' KV plan: the fraction form shares out what the weights, the activation
// workspace and the backend's scratch leave, so a backend with scratch gets exactly its worth
// fewer blocks, and a byte budget that leaves no room for the scratch is refused. And
// BackendFromFlags' refusals of bad --cuda-attention values, which need no GPU.
#include "cli/model_flags.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/kv_cache.h"
#include "engine/testing/counting_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"

namespace mlkv::cli {
namespace {

using ::testing::HasSubstr;

ModelConfig SmallConfig() {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 4},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 97},
                                       {"max_position_embeddings", 256},
                                       {"rotary_pct", 0.5},
                                       {"eos_token_id", 0}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

Flags BudgetFlags(const std::string& budget_flag, int64_t budget_value) {
  auto flags = Flags::Parse({"--" + budget_flag, std::to_string(budget_value), "--device", "cpu",
                             "--memory-limit-bytes", "100000000"},
                            {budget_flag, "device", "memory-limit-bytes"});
  EXPECT_TRUE(flags.ok()) << flags.status();
  return *flags;
}

TEST(EngineOptionsFromFlagsTest, TheFractionIsOfWhatTheScratchLeavesToo) {
  const ModelConfig config = SmallConfig();
  const Flags flags = BudgetFlags("kv-cache-fraction", 1);
  testing::CountingBackend backend(CreateCpuBackend());
  auto without = EngineOptionsFromFlags(flags, config, 0, std::nullopt, &backend);
  ASSERT_TRUE(without.ok()) << without.status();
  const int64_t block_bytes =
      KvCache::BlockBytes(config, {without->scheduler.block_size, 1, DType::kF32});
  constexpr int64_t kScratchBlocks = 5;
  backend.set_scratch_bytes(kScratchBlocks * block_bytes);
  auto with = EngineOptionsFromFlags(flags, config, 0, std::nullopt, &backend);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_EQ(with->scheduler.num_blocks, without->scheduler.num_blocks - kScratchBlocks);
}

TEST(EngineOptionsFromFlagsTest, AByteBudgetMustLeaveRoomForTheScratch) {
  const ModelConfig config = SmallConfig();
  testing::CountingBackend backend(CreateCpuBackend());
  const Flags fraction = BudgetFlags("kv-cache-fraction", 1);
  auto all = EngineOptionsFromFlags(fraction, config, 0, std::nullopt, &backend);
  ASSERT_TRUE(all.ok()) << all.status();
  const int64_t block_bytes =
      KvCache::BlockBytes(config, {all->scheduler.block_size, 1, DType::kF32});
  // Every block the memory holds fits until the backend needs a block's worth of scratch.
  const Flags bytes = BudgetFlags("kv-cache-bytes", all->scheduler.num_blocks * block_bytes);
  ASSERT_TRUE(EngineOptionsFromFlags(bytes, config, 0, std::nullopt, &backend).ok());
  backend.set_scratch_bytes(block_bytes);
  const auto refused = EngineOptionsFromFlags(bytes, config, 0, std::nullopt, &backend);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--kv-cache-bytes"));
}

// Bad values are refused, naming the flag, before any device is touched (so also on machines
// without a GPU); the CPU backend has no CUDA kernels to choose between.
TEST(BackendFromFlagsTest, RefusesBadCudaAttentionValues) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c :
       {Case{{"--device", "cuda", "--cuda-attention", "mma"}, "must be simt or tensor-core"},
        Case{{"--device", "cuda", "--cuda-attention", ""}, "must be simt or tensor-core"},
        Case{{"--device", "cpu", "--cuda-attention", "mma"}, "must be simt or tensor-core"},
        Case{{"--device", "cpu", "--cuda-attention", "simt"}, "needs the CUDA backend"}}) {
    auto flags = Flags::Parse(c.args, {"device", "cuda-attention"});
    ASSERT_TRUE(flags.ok()) << flags.status();
    const auto backend = BackendFromFlags(*flags, 1, "cpu");
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument) << backend.status();
    EXPECT_THAT(std::string(backend.status().message()), HasSubstr("--cuda-attention"));
    EXPECT_THAT(std::string(backend.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace mlkv::cli
