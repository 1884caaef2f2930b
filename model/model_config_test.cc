// Config parsing: the paper's variants, KV-layer placement (uneven groups too), and every class of
// invalid value refused with an error naming the key.
#include "model/model_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

nlohmann::json Pythia160m() {
  return {{"hidden_size", 768},
          {"num_attention_heads", 12},
          {"num_hidden_layers", 12},
          {"intermediate_size", 3072},
          {"vocab_size", 50304},
          {"rotary_pct", 0.25},
          {"max_position_embeddings", 2048}};
}

TEST(ComputeKvLayersTest, MatchesTheFormulaOfModelMd) {
  EXPECT_THAT(ComputeKvLayers(12, 12), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  EXPECT_THAT(ComputeKvLayers(12, 6), ElementsAre(0, 2, 4, 6, 8, 10));
  EXPECT_THAT(ComputeKvLayers(12, 4), ElementsAre(0, 3, 6, 9));
  EXPECT_THAT(ComputeKvLayers(12, 5), ElementsAre(0, 2, 4, 7, 9));  // uneven, from model.md
  EXPECT_THAT(ComputeKvLayers(12, 2), ElementsAre(0, 6));
  EXPECT_THAT(ComputeKvLayers(12, 1), ElementsAre(0));
  EXPECT_THAT(ComputeKvLayers(7, 3), ElementsAre(0, 2, 4));
}

TEST(ModelConfigTest, DefaultsAreStandardMha) {
  auto config = ModelConfig::FromJson(Pythia160m());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->head_dim, 64);
  EXPECT_EQ(config->rotary_dims, 16);
  EXPECT_EQ(config->num_key_value_heads, 12);
  EXPECT_EQ(config->num_key_value_layers, 12);
  EXPECT_TRUE(config->is_standard_mha());
  EXPECT_EQ(config->kv_sharing_rope, KvSharingRope::kUnrotated);
  EXPECT_EQ(config->kv_bytes_per_token(2), 36864);  // model.md's table, MHA-144 fp16
  // Pythia-160M has 162,322,944 parameters (untied embeddings, vocab 50304).
  EXPECT_EQ(config->num_parameters(), 162322944);
  // Of which 121,344 are layernorm parameters and biases, which stay float32 whatever the
  // weight dtype: 768 x (2 + 12 x 13) (four layernorm vectors, query/key/value/dense biases,
  // and the MLP's 3072 + 768).
  EXPECT_EQ(config->num_matrix_parameters(), 162322944 - 121344);
  EXPECT_EQ(config->weight_bytes(DType::kF32), 162322944 * 4);
  EXPECT_EQ(config->weight_bytes(DType::kF16), (162322944 - 121344) * 2 + 121344 * 4);
  EXPECT_EQ(config->weight_bytes(DType::kBF16), config->weight_bytes(DType::kF16));
}

TEST(ModelConfigTest, KvBytesPerTokenOfThePaperVariants) {
  struct Variant {
    int kv_layers, kv_heads;
    int64_t bytes;
  };
  for (Variant v :
       {Variant{12, 4, 12288}, Variant{4, 12, 12288}, Variant{12, 1, 3072}, Variant{4, 3, 3072},
        Variant{6, 1, 1536}, Variant{4, 1, 1024}, Variant{2, 1, 512}, Variant{1, 1, 256}}) {
    auto json = Pythia160m();
    json["num_key_value_layers"] = v.kv_layers;
    json["num_key_value_heads"] = v.kv_heads;
    auto config = ModelConfig::FromJson(json);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->kv_bytes_per_token(2), v.bytes) << v.kv_layers << "x" << v.kv_heads;
  }
}

TEST(ModelConfigTest, UnevenGroups) {
  auto json = Pythia160m();
  json["num_key_value_layers"] = 5;
  auto config = ModelConfig::FromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->layer_group, ElementsAre(0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4));
  EXPECT_TRUE(config->is_kv_layer(7));
  EXPECT_FALSE(config->is_kv_layer(8));
  EXPECT_EQ(config->group_num_layers(2), 3);
  EXPECT_EQ(config->group_num_layers(4), 3);
}

TEST(ModelConfigTest, NewerKeyNamesAndRoundTrip) {
  auto json = Pythia160m();
  json.erase("rotary_pct");
  json["partial_rotary_factor"] = 0.5;
  json["rope_theta"] = 500.0;
  json["kv_sharing_rope"] = "rotated";
  json["hidden_act"] = "gelu_pytorch_tanh";
  auto config = ModelConfig::FromJson(json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rotary_dims, 32);
  EXPECT_EQ(config->rotary_emb_base, 500.0);
  auto again = ModelConfig::FromJson(config->ToJson());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToJson(), config->ToJson());
}

struct BadConfig {
  std::string key;
  nlohmann::json value;  // null erases the key
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedNamingTheKey) {
  auto json = Pythia160m();
  if (GetParam().value.is_null()) {
    json.erase(GetParam().key);
  } else {
    json[GetParam().key] = GetParam().value;
  }
  auto config = ModelConfig::FromJson(json);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("\"" + GetParam().key + "\""));
}

INSTANTIATE_TEST_SUITE_P(
    EveryClassOfBadValue, BadConfigTest,
    ::testing::Values(BadConfig{"hidden_size", nullptr}, BadConfig{"hidden_size", 0},
                      BadConfig{"hidden_size", -768}, BadConfig{"hidden_size", "768"},
                      BadConfig{"hidden_size", 770},  // not divisible by 12 heads
                      BadConfig{"num_attention_heads", 1.5}, BadConfig{"vocab_size", nullptr},
                      BadConfig{"intermediate_size", 0}, BadConfig{"num_key_value_heads", 5},
                      BadConfig{"num_key_value_heads", 0}, BadConfig{"num_key_value_layers", 13},
                      BadConfig{"num_key_value_layers", 0},
                      BadConfig{"rotary_pct", 0.3},  // odd rotary dims
                      BadConfig{"rotary_pct", 1.5}, BadConfig{"rotary_emb_base", -1.0},
                      BadConfig{"layer_norm_eps", 0.0}, BadConfig{"use_parallel_residual", "yes"},
                      BadConfig{"hidden_act", "relu"}, BadConfig{"kv_sharing_rope", "sideways"},
                      BadConfig{"use_key_value_mlp", true}, BadConfig{"eos_token_id", 50304},
                      BadConfig{"rope_scaling", {{"type", "linear"}}},
                      BadConfig{"model_type", "llama"}, BadConfig{"max_position_embeddings", 0}));

TEST(ModelConfigTest, RefusesNonObjectsAndUnreadableFiles) {
  EXPECT_FALSE(ModelConfig::FromJson(nlohmann::json::array()).ok());
  auto missing = ModelConfig::FromFile("/nonexistent/config.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mlkv
