// Tests that the byte-level tokenizer.json `mlkv random-model` writes loads, round-trips any text,
// keeps every id inside the model's vocabulary, and gives "<|endoftext|>" the model's eos id.
#include "gtest/gtest.h"
#include "model/random_model.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {
namespace {

ModelConfig Config(int64_t vocab_size, int64_t eos) {
  ModelConfig config;
  config.vocab_size = vocab_size;
  config.eos_token_id = eos;
  return config;
}

std::unique_ptr<Tokenizer> Load(const ModelConfig& config) {
  std::optional<nlohmann::json> json = ByteLevelTokenizerJson(config);
  EXPECT_TRUE(json.has_value());
  if (!json) return nullptr;
  auto tokenizer = Tokenizer::FromJson(json->dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

TEST(RandomModelTokenizerTest, RoundTripsTextWithIdsInsideTheVocabulary) {
  for (int64_t eos : {0, 2, 256, 300, 511}) {
    auto tokenizer = Load(Config(512, eos));
    ASSERT_NE(tokenizer, nullptr) << "eos " << eos;
    EXPECT_EQ(tokenizer->TokenToId("<|endoftext|>"), eos);
    const std::string text = "Hello, w\xC3\xB6rld \xF0\x9F\x98\x80\n\t<|endoftext|>";
    const std::vector<int32_t> ids = *tokenizer->Encode(text);
    EXPECT_EQ(ids.size(), text.size() - std::string("<|endoftext|>").size() + 1);
    for (int32_t id : ids) EXPECT_LT(id, 512);
    EXPECT_EQ(ids.back(), eos);
    EXPECT_EQ(*tokenizer->Decode(ids), text);
  }
}

TEST(RandomModelTokenizerTest, EveryByteHasItsOwnIdBelow257) {
  auto tokenizer = Load(Config(257, 2));
  ASSERT_NE(tokenizer, nullptr);
  for (int32_t id = 0; id < 257; ++id) {
    auto bytes = tokenizer->TokenBytes(id);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    if (id != 2) {
      EXPECT_EQ(bytes->size(), 1u) << "id " << id;
    }
  }
}

TEST(RandomModelTokenizerTest, NoTokenizerWhenTheVocabularyIsTooSmall) {
  EXPECT_FALSE(ByteLevelTokenizerJson(Config(256, 2)).has_value());
}

}  // namespace
}  // namespace mlkv
