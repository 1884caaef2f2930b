// Tests of LoadModelWeights in both projection layouts, of the random-model writer, and of the
// loader's refusal of missing, misshapen and unexpected tensors.
#include "model/model_weights.h"

#include <cmath>
#include <filesystem>
#include <functional>

#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
#include "model/model_writer.h"
#include "model/random_model.h"

namespace mlkv {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ModelConfig TinyConfig(int64_t kv_heads, int64_t kv_layers, bool tied = false) {
  nlohmann::json json = {{"hidden_size", 8},
                         {"num_attention_heads", 2},
                         {"num_hidden_layers", 3},
                         {"intermediate_size", 12},
                         {"vocab_size", 11},
                         {"rotary_pct", 0.5},
                         {"num_key_value_heads", kv_heads},
                         {"num_key_value_layers", kv_layers},
                         {"tie_word_embeddings", tied}};
  absl::StatusOr<ModelConfig> config = ModelConfig::FromJson(json);
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

void ExpectSameWeights(const ModelHostWeights& a, const ModelHostWeights& b) {
  EXPECT_EQ(a.embed_in, b.embed_in);
  EXPECT_EQ(a.embed_out, b.embed_out);
  EXPECT_EQ(a.final_layernorm_weight, b.final_layernorm_weight);
  EXPECT_EQ(a.final_layernorm_bias, b.final_layernorm_bias);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    SCOPED_TRACE(l);
    const LayerHostWeights &x = a.layers[l], &y = b.layers[l];
    EXPECT_EQ(x.input_layernorm_weight, y.input_layernorm_weight);
    EXPECT_EQ(x.input_layernorm_bias, y.input_layernorm_bias);
    EXPECT_EQ(x.post_attention_layernorm_weight, y.post_attention_layernorm_weight);
    EXPECT_EQ(x.post_attention_layernorm_bias, y.post_attention_layernorm_bias);
    EXPECT_EQ(x.query_weight, y.query_weight);
    EXPECT_EQ(x.query_bias, y.query_bias);
    EXPECT_EQ(x.key_weight, y.key_weight);
    EXPECT_EQ(x.key_bias, y.key_bias);
    EXPECT_EQ(x.value_weight, y.value_weight);
    EXPECT_EQ(x.value_bias, y.value_bias);
    EXPECT_EQ(x.dense_weight, y.dense_weight);
    EXPECT_EQ(x.dense_bias, y.dense_bias);
    EXPECT_EQ(x.dense_h_to_4h_weight, y.dense_h_to_4h_weight);
    EXPECT_EQ(x.dense_h_to_4h_bias, y.dense_h_to_4h_bias);
    EXPECT_EQ(x.dense_4h_to_h_weight, y.dense_4h_to_h_weight);
    EXPECT_EQ(x.dense_4h_to_h_bias, y.dense_4h_to_h_bias);
  }
}

class ModelWeightsTest : public ::testing::Test {
 protected:
  // Writes `config`'s random model in `layout`, then lets `edit` change the tensor list.
  std::string WriteEdited(const ModelConfig& config, QkvLayout layout,
                          const std::function<void(std::vector<SafetensorsTensor>&)>& edit) {
    absl::StatusOr<std::vector<SafetensorsTensor>> tensors =
        ModelTensors(config, RandomModelWeights(config, 1), DType::kF32, layout);
    EXPECT_TRUE(tensors.ok()) << tensors.status();
    edit(*tensors);
    const std::string out = dir_ + "/edited";
    std::filesystem::create_directories(out);
    EXPECT_TRUE(WriteSafetensors(out + "/" + kSafetensorsFileName, *tensors).ok());
    return out;
  }
  std::string LoadError(const ModelConfig& config, const std::string& model_dir) {
    absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, model_dir);
    EXPECT_FALSE(weights.ok());
    return weights.ok() ? "" : std::string(weights.status().message());
  }

  ::mlkv::testing::ScopedTempDir temp_{"mw"};
  const std::string dir_ = temp_.path();
};

TEST_F(ModelWeightsTest, FusedAndSplitLayoutsLoadTheSameWeights) {
  const ModelConfig config = TinyConfig(2, 3);
  const ModelHostWeights original = RandomModelWeights(config, 42);
  ASSERT_TRUE(
      WriteModelDirectory(config, original, DType::kF32, QkvLayout::kFused, dir_ + "/f").ok());
  ASSERT_TRUE(
      WriteModelDirectory(config, original, DType::kF32, QkvLayout::kSplit, dir_ + "/s").ok());
  absl::StatusOr<ModelHostWeights> fused = LoadModelWeights(config, dir_ + "/f");
  absl::StatusOr<ModelHostWeights> split = LoadModelWeights(config, dir_ + "/s");
  ASSERT_TRUE(fused.ok()) << fused.status();
  ASSERT_TRUE(split.ok()) << split.status();
  ExpectSameWeights(*fused, *split);
  ExpectSameWeights(*fused, original);
}

TEST_F(ModelWeightsTest, FusedRowsAreGroupedPerHead) {
  // model.md: head h owns fused rows [3dh, 3dh+d) q, [3dh+d, 3dh+2d) k, [3dh+2d, 3dh+3d) v.
  // Mark each fused row with its index and check where it lands.
  const ModelConfig config = TinyConfig(2, 3);
  const int64_t H = 8, d = 4;
  const std::string dir = WriteEdited(config, QkvLayout::kFused, [&](auto& tensors) {
    for (SafetensorsTensor& t : tensors) {
      if (t.name != "gpt_neox.layers.1.attention.query_key_value.weight") continue;
      std::vector<float> rows(3 * H * H);
      for (int64_t i = 0; i < 3 * H * H; ++i) rows[i] = static_cast<float>(i / H);
      t.data = EncodeFloats(rows, DType::kF32);
    }
  });
  absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, dir);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const LayerHostWeights& l = weights->layers[1];
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t i = 0; i < d; ++i) {
      const int64_t row = h * d + i;
      EXPECT_EQ(l.query_weight[row * H], 3 * d * h + i);
      EXPECT_EQ(l.key_weight[row * H + H - 1], 3 * d * h + d + i);
      EXPECT_EQ(l.value_weight[row * H + 3], 3 * d * h + 2 * d + i);
    }
  }
}

TEST_F(ModelWeightsTest, MlkvModelUsesSplitLayoutWithKvOnlyInKvLayers) {
  const ModelConfig config = TinyConfig(1, 2);  // KV layers 0 and 1; layer 2 reuses layer 1's
  ASSERT_TRUE(WriteRandomModel(config, 5, DType::kF32, dir_).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_TRUE((*checkpoint)->Contains("gpt_neox.layers.1.attention.key.weight"));
  EXPECT_FALSE((*checkpoint)->Contains("gpt_neox.layers.2.attention.key.weight"));
  absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, dir_);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ(weights->layers[1].key_weight.size(), 4u * 8u);
  EXPECT_TRUE(weights->layers[2].key_weight.empty());
  ExpectSameWeights(*weights, RandomModelWeights(config, 5));
}

TEST_F(ModelWeightsTest, RandomModelIsDeterministicAndMhaIsFused) {
  const ModelConfig config = TinyConfig(2, 3);
  ASSERT_TRUE(WriteRandomModel(config, 9, DType::kBF16, dir_).ok());
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir_);
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_TRUE((*checkpoint)->Contains("gpt_neox.layers.0.attention.query_key_value.weight"));
  EXPECT_EQ((*checkpoint)->Find("embed_out.weight")->dtype, DType::kBF16);
  absl::StatusOr<ModelConfig> written = ModelConfig::FromFile(dir_ + "/config.json");
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->torch_dtype, "bfloat16");
  ExpectSameWeights(RandomModelWeights(config, 9), RandomModelWeights(config, 9));
  EXPECT_NE(RandomModelWeights(config, 9).embed_in, RandomModelWeights(config, 10).embed_in);
}

TEST_F(ModelWeightsTest, RandomScalesAreAsDocumented) {
  nlohmann::json json = TinyConfig(2, 3).ToJson();
  json["hidden_size"] = 64;
  json["num_attention_heads"] = 4;
  json["vocab_size"] = 512;
  const ModelConfig config = *ModelConfig::FromJson(json);
  const ModelHostWeights w = RandomModelWeights(config, 3);
  auto stddev = [](const std::vector<float>& v) {
    double sum = 0, sum2 = 0;
    for (float x : v) sum += x, sum2 += double(x) * x;
    const double mean = sum / v.size();
    return std::sqrt(sum2 / v.size() - mean * mean);
  };
  EXPECT_NEAR(stddev(w.embed_in), 1.0, 0.02);
  EXPECT_NEAR(stddev(w.embed_out), 2.0 / 8.0, 0.01);
  EXPECT_NEAR(stddev(w.layers[0].query_weight), 1.0 / 8.0, 0.01);
  EXPECT_NEAR(stddev(w.layers[0].input_layernorm_weight), 0.1, 0.04);
}

TEST_F(ModelWeightsTest, HalfPrecisionCheckpointLoadsRounded) {
  const ModelConfig config = TinyConfig(1, 1);
  ASSERT_TRUE(WriteRandomModel(config, 2, DType::kF16, dir_).ok());
  absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, dir_);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const ModelHostWeights original = RandomModelWeights(config, 2);
  for (size_t i = 0; i < original.embed_in.size(); ++i) {
    EXPECT_NEAR(weights->embed_in[i], original.embed_in[i],
                std::abs(original.embed_in[i]) * 1e-3 + 1e-7);
  }
}

TEST_F(ModelWeightsTest, TiedEmbeddingsLeaveEmbedOutEmpty) {
  const ModelConfig config = TinyConfig(2, 3, /*tied=*/true);
  ASSERT_TRUE(WriteRandomModel(config, 4, DType::kF32, dir_).ok());
  absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, dir_);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_TRUE(weights->embed_out.empty());
  EXPECT_EQ(weights->embed_in.size(), 11u * 8u);
}

TEST_F(ModelWeightsTest, UntiedWithoutEmbedOutIsAnError) {
  const ModelConfig tied = TinyConfig(2, 3, /*tied=*/true);
  ASSERT_TRUE(WriteRandomModel(tied, 4, DType::kF32, dir_).ok());
  EXPECT_THAT(LoadError(TinyConfig(2, 3), dir_), StartsWith("embed_out.weight: "));
}

TEST_F(ModelWeightsTest, MissingTensorIsNamed) {
  const ModelConfig config = TinyConfig(2, 3);
  const std::string dir = WriteEdited(config, QkvLayout::kSplit, [](auto& tensors) {
    std::erase_if(tensors, [](const SafetensorsTensor& t) {
      return t.name == "gpt_neox.layers.2.mlp.dense_4h_to_h.bias";
    });
  });
  EXPECT_THAT(LoadError(config, dir), StartsWith("gpt_neox.layers.2.mlp.dense_4h_to_h.bias: "));
}

TEST_F(ModelWeightsTest, MisshapenTensorIsNamed) {
  const ModelConfig config = TinyConfig(2, 3);
  ASSERT_TRUE(WriteRandomModel(config, 4, DType::kF32, dir_).ok());
  nlohmann::json wider = config.ToJson();
  wider["intermediate_size"] = 16;
  EXPECT_THAT(LoadError(*ModelConfig::FromJson(wider), dir_),
              HasSubstr("mlp.dense_h_to_4h.weight: shape [12,8], expected [16,8]"));
}

TEST_F(ModelWeightsTest, KeyWeightsInNonKvLayerAreAnError) {
  const ModelConfig config = TinyConfig(1, 2);
  const std::string dir = WriteEdited(config, QkvLayout::kSplit, [](auto& tensors) {
    tensors.push_back({"gpt_neox.layers.2.attention.key.weight",
                       DType::kF32,
                       {4, 8},
                       EncodeFloats(std::vector<float>(32, 0.0f), DType::kF32)});
  });
  const std::string error = LoadError(config, dir);
  EXPECT_THAT(error, StartsWith("gpt_neox.layers.2.attention.key.weight: unexpected tensor"));
  EXPECT_THAT(error, HasSubstr("KV layers [0,1]"));
}

TEST_F(ModelWeightsTest, FusedLayoutForMlkvConfigIsAnError) {
  const ModelConfig mha = TinyConfig(2, 3);
  ASSERT_TRUE(WriteRandomModel(mha, 4, DType::kF32, dir_).ok());  // fused
  EXPECT_THAT(LoadError(TinyConfig(1, 3), dir_),
              HasSubstr("query_key_value layout is only valid for standard multi-head"));
}

TEST_F(ModelWeightsTest, KnownBuffersAreIgnored) {
  const ModelConfig config = TinyConfig(2, 3);
  const std::string dir = WriteEdited(config, QkvLayout::kFused, [](auto& tensors) {
    for (const char* buffer :
         {"attention.bias", "attention.masked_bias", "attention.rotary_emb.inv_freq"}) {
      tensors.push_back({std::string("gpt_neox.layers.0.") + buffer,
                         DType::kF32,
                         {1},
                         EncodeFloats(std::vector<float>{1.0f}, DType::kF32)});
    }
  });
  absl::StatusOr<ModelHostWeights> weights = LoadModelWeights(config, dir);
  EXPECT_TRUE(weights.ok()) << weights.status();
}

}  // namespace
}  // namespace mlkv
