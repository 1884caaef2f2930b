// Tests of the MHA -> GQA/MQA/MLKV converter: identity conversion, head and layer pooling on
// hand-computed examples, dtype preservation, and argument errors naming the flags.
#include "model/converter.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/model_writer.h"
#include "model/random_model.h"

namespace mlkv {
namespace {

using ::testing::Each;
using ::testing::FloatEq;
using ::testing::HasSubstr;

// H = 4, two heads of d = 2, three layers, standard MHA.
ModelConfig MhaConfig(int64_t heads = 2) {
  absl::StatusOr<ModelConfig> config = ModelConfig::FromJson({{"hidden_size", 4},
                                                              {"num_attention_heads", heads},
                                                              {"num_hidden_layers", 3},
                                                              {"intermediate_size", 8},
                                                              {"vocab_size", 5}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

// Fills each layer's K/V so that every row of head h in layer l holds value(l, h).
void SetKv(ModelHostWeights& w, int64_t head_dim, int64_t cols,
           const std::function<float(int64_t, int64_t)>& key,
           const std::function<float(int64_t, int64_t)>& value) {
  for (size_t l = 0; l < w.layers.size(); ++l) {
    LayerHostWeights& layer = w.layers[l];
    for (size_t i = 0; i < layer.key_weight.size(); ++i) {
      layer.key_weight[i] = key(l, i / cols / head_dim);
      layer.value_weight[i] = value(l, i / cols / head_dim);
    }
    for (size_t i = 0; i < layer.key_bias.size(); ++i) {
      layer.key_bias[i] = 10 * key(l, i / head_dim);
      layer.value_bias[i] = 10 * value(l, i / head_dim);
    }
  }
}

class ConverterTest : public ::testing::Test {
 protected:
  // Converts `in_` and loads the result with the config it was written with.
  absl::StatusOr<ModelHostWeights> ConvertAndLoad(int64_t kv_heads, int64_t kv_layers,
                                                  KvPooling pooling) {
    absl::Status status = ConvertCheckpoint(in_, out_, kv_heads, kv_layers, pooling);
    if (!status.ok()) return status;
    absl::StatusOr<ModelConfig> config = ModelConfig::FromFile(out_ + "/config.json");
    if (!config.ok()) return config.status();
    EXPECT_EQ(config->num_key_value_heads, kv_heads);
    EXPECT_EQ(config->num_key_value_layers, kv_layers);
    return LoadModelWeights(*config, out_);
  }

  ::mlkv::testing::ScopedTempDir temp_{"conv"};
  const std::string dir_ = temp_.path();
  const std::string in_ = dir_ + "/in";
  const std::string out_ = dir_ + "/out";
};

TEST_F(ConverterTest, IdentityConversionKeepsWeights) {
  const ModelConfig config = MhaConfig();
  ASSERT_TRUE(WriteRandomModel(config, 11, DType::kF32, in_).ok());  // fused layout
  absl::StatusOr<ModelHostWeights> converted = ConvertAndLoad(2, 3, KvPooling::kPairwise);
  ASSERT_TRUE(converted.ok()) << converted.status();
  absl::StatusOr<ModelHostWeights> original = LoadModelWeights(config, in_);
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(converted->embed_in, original->embed_in);
  EXPECT_EQ(converted->embed_out, original->embed_out);
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(converted->layers[l].query_weight, original->layers[l].query_weight);
    EXPECT_EQ(converted->layers[l].key_weight, original->layers[l].key_weight);
    EXPECT_EQ(converted->layers[l].value_bias, original->layers[l].value_bias);
    EXPECT_EQ(converted->layers[l].dense_4h_to_h_weight, original->layers[l].dense_4h_to_h_weight);
  }
}

// One KV layer for three layers, one KV head for two. Key rows: layer 0 heads (0, 2) -> 1,
// layer 1 (1, 3) -> 2, layer 2 (3, 5) -> 4. Values: (8, 8) -> 8, (3, 5) -> 4, (-1, 1) -> 0.
//   mean:     key (1 + 2 + 4) / 3 = 7/3          value (8 + 4 + 0) / 3 = 4
//   pairwise: key ((1 + 2) / 2 + 4) / 2 = 2.75   value ((8 + 4) / 2 + 0) / 2 = 3
class HandComputedTest : public ConverterTest {
 protected:
  void SetUp() override {
    const ModelConfig config = MhaConfig();
    ModelHostWeights w = RandomModelWeights(config, 1);
    const float keys[3][2] = {{0, 2}, {1, 3}, {3, 5}};
    const float values[3][2] = {{8, 8}, {3, 5}, {-1, 1}};
    SetKv(
        w, 2, 4, [&](int64_t l, int64_t h) { return keys[l][h]; },
        [&](int64_t l, int64_t h) { return values[l][h]; });
    ASSERT_TRUE(WriteModelDirectory(config, w, DType::kF32, QkvLayout::kFused, in_).ok());
  }
};

TEST_F(HandComputedTest, MeanPooling) {
  absl::StatusOr<ModelHostWeights> w = ConvertAndLoad(1, 1, KvPooling::kMean);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->layers[0].key_weight.size(), 2u * 4u);
  EXPECT_THAT(w->layers[0].key_weight, Each(FloatEq(7.0f / 3.0f)));
  EXPECT_THAT(w->layers[0].key_bias, Each(FloatEq(70.0f / 3.0f)));
  EXPECT_THAT(w->layers[0].value_weight, Each(FloatEq(4.0f)));
  EXPECT_THAT(w->layers[0].value_bias, Each(FloatEq(40.0f)));
  EXPECT_TRUE(w->layers[1].key_weight.empty());
  EXPECT_TRUE(w->layers[2].value_bias.empty());
}

TEST_F(HandComputedTest, PairwisePoolingWeighsLaterLayersMore) {
  absl::StatusOr<ModelHostWeights> w = ConvertAndLoad(1, 1, KvPooling::kPairwise);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(w->layers[0].key_weight, Each(FloatEq(2.75f)));
  EXPECT_THAT(w->layers[0].key_bias, Each(FloatEq(27.5f)));
  EXPECT_THAT(w->layers[0].value_weight, Each(FloatEq(3.0f)));
  EXPECT_THAT(w->layers[0].value_bias, Each(FloatEq(30.0f)));
}

TEST_F(HandComputedTest, UnevenGroupsPoolOnlyTheirOwnLayers) {
  // L = 3, K = 2: KV layers 0 and 1; group 0 = {0}, group 1 = {1, 2}.
  absl::StatusOr<ModelHostWeights> w = ConvertAndLoad(2, 2, KvPooling::kMean);
  ASSERT_TRUE(w.ok()) << w.status();
  // Heads kept apart (nKV = nH): layer 0 keeps (0, 2); layer 1 gets ((1+3)/2, (3+5)/2) = (2, 4).
  const std::vector<float> expected_key = {0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2};
  EXPECT_EQ(w->layers[0].key_weight, expected_key);
  for (size_t i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(w->layers[1].key_weight[i], i < 8 ? 2 : 4);
  EXPECT_TRUE(w->layers[2].key_weight.empty());
}

TEST(ConvertWeightsTest, GroupsConsecutiveHeads) {
  // Four heads into two KV heads: KV head 0 = mean(heads 0, 1), KV head 1 = mean(heads 2, 3).
  const ModelConfig in = MhaConfig(4);  // d = 1
  ModelHostWeights w = RandomModelWeights(in, 1);
  SetKv(
      w, 1, 4, [](int64_t l, int64_t h) { return float(h * h); },
      [](int64_t l, int64_t h) { return float(l); });
  absl::StatusOr<ModelConfig> out = ConvertedConfig(in, 2, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<ModelHostWeights> converted = ConvertWeights(in, w, *out, KvPooling::kMean);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->layers[1].key_bias, (std::vector<float>{5.0f, 65.0f}));
  EXPECT_EQ(converted->layers[2].value_bias, (std::vector<float>{20.0f, 20.0f}));
}

TEST_F(ConverterTest, KeepsTheInputDType) {
  ASSERT_TRUE(WriteRandomModel(MhaConfig(), 3, DType::kBF16, in_).ok());
  ASSERT_TRUE(ConvertCheckpoint(in_, out_, 1, 1, KvPooling::kMean).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(out_);
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ((*checkpoint)->Find("gpt_neox.layers.0.attention.key.weight")->dtype, DType::kBF16);
  EXPECT_FALSE((*checkpoint)->Contains("gpt_neox.layers.1.attention.key.weight"));
  EXPECT_EQ(ModelConfig::FromFile(out_ + "/config.json")->torch_dtype, "bfloat16");
}

TEST_F(ConverterTest, CarriesTheTokenizerOver) {
  ASSERT_TRUE(WriteRandomModel(MhaConfig(), 3, DType::kF32, in_).ok());  // vocab 5: none
  ASSERT_TRUE(ConvertCheckpoint(in_, out_, 1, 1, KvPooling::kMean).ok());
  EXPECT_FALSE(std::filesystem::exists(out_ + "/tokenizer.json"));

  const std::string tokenizer = "{\"model\": {\"type\": \"BPE\"}}\n";
  std::ofstream(in_ + "/tokenizer.json") << tokenizer;
  ASSERT_TRUE(ConvertCheckpoint(in_, dir_ + "/with", 1, 1, KvPooling::kMean).ok());
  std::ifstream copied(dir_ + "/with/tokenizer.json");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(copied), {}), tokenizer);
}

TEST_F(ConverterTest, BadArgumentsNameTheFlag) {
  ASSERT_TRUE(WriteRandomModel(MhaConfig(), 3, DType::kF32, in_).ok());
  for (int64_t heads : {0, 3, -2}) {
    EXPECT_THAT(std::string(ConvertCheckpoint(in_, out_, heads, 1, KvPooling::kMean).message()),
                HasSubstr("--num-key-value-heads"));
  }
  for (int64_t layers : {0, 4}) {
    EXPECT_THAT(std::string(ConvertCheckpoint(in_, out_, 1, layers, KvPooling::kMean).message()),
                HasSubstr("--num-key-value-layers"));
  }
  EXPECT_FALSE(std::filesystem::exists(out_));
  EXPECT_THAT(std::string(ConvertCheckpoint(in_, in_, 1, 1, KvPooling::kMean).message()),
              HasSubstr("must differ"));
  EXPECT_FALSE(ParseKvPooling("median").ok());
  EXPECT_EQ(*ParseKvPooling("pairwise"), KvPooling::kPairwise);
}

TEST_F(ConverterTest, InputMustBeStandardMha) {
  ASSERT_TRUE(WriteRandomModel(MhaConfig(), 3, DType::kF32, in_).ok());
  ASSERT_TRUE(ConvertCheckpoint(in_, out_, 1, 1, KvPooling::kMean).ok());
  EXPECT_THAT(
      std::string(ConvertCheckpoint(out_, dir_ + "/again", 1, 1, KvPooling::kMean).message()),
      HasSubstr("needs a standard multi-head checkpoint"));
}

}  // namespace
}  // namespace mlkv
