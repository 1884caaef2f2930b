// The decode-step cost model against hand arithmetic on the Pythia-160M shape.
#include "planning/decode_roofline.h"

#include "gtest/gtest.h"

namespace mlkv {
namespace {

ModelConfig Pythia160m(int kv_layers, int kv_heads) {
  auto config = ModelConfig::FromJson({{"hidden_size", 768},
                                       {"num_attention_heads", 12},
                                       {"num_hidden_layers", 12},
                                       {"intermediate_size", 3072},
                                       {"vocab_size", 50304},
                                       {"num_key_value_layers", kv_layers},
                                       {"num_key_value_heads", kv_heads}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

TEST(DecodeRooflineTest, MatchesHandArithmetic) {
  const ModelConfig mha = Pythia160m(12, 12);
  const DeviceLimits device{1e12, 1e14};
  const DecodeStepCost cost =
      EstimateDecodeStep(mha, DType::kF16, DType::kF16, /*batch=*/8, /*context=*/1000, device);
  // Matrices in f16, the 121,344 layernorm parameters and biases in float32.
  EXPECT_DOUBLE_EQ(cost.weight_bytes, (162322944.0 - 121344) * 2 + 121344 * 4);
  EXPECT_DOUBLE_EQ(cost.kv_bytes, 8.0 * 1000 * 36864);  // model.md: 36,864 B/token in fp16
  const double multiplying = 162322944.0 - 50304.0 * 768;
  EXPECT_DOUBLE_EQ(cost.flops, 8.0 * (2 * multiplying + 4.0 * 1000 * 768 * 12));
  EXPECT_TRUE(cost.memory_bound);
  EXPECT_DOUBLE_EQ(cost.tokens_per_s, 8.0 / ((cost.weight_bytes + cost.kv_bytes) / 1e12));
}

TEST(DecodeRooflineTest, SharingKvHeadsAcrossLayersCutsKvBytesOnly) {
  const DeviceLimits device{4.8e12, 2e14};
  const DecodeStepCost mha =
      EstimateDecodeStep(Pythia160m(12, 12), DType::kF16, DType::kF16, 256, 2048, device);
  const DecodeStepCost mlkv2 =
      EstimateDecodeStep(Pythia160m(2, 1), DType::kF16, DType::kF16, 256, 2048, device);
  EXPECT_DOUBLE_EQ(mha.kv_bytes / mlkv2.kv_bytes, 72.0);  // model.md's table
  EXPECT_GT(mlkv2.tokens_per_s, mha.tokens_per_s);
  // Batch 256 at 2048 tokens: MHA reads 19.3 GB of KV per step (memory-bound), MLKV-2 268 MB
  // plus 297 MB of weights, less time than its 76 GFLOP take at 200 TFLOP/s (compute-bound).
  EXPECT_TRUE(mha.memory_bound);
  EXPECT_FALSE(mlkv2.memory_bound);
}

}  // namespace
}  // namespace mlkv
