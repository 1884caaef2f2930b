// Bad tokenizer.json files: one test per class of problem, each a clear error that names it.
#include "tokenizer/tokenizer_spec.h"

#include "gtest/gtest.h"
#include "tokenizer/test_tokenizer_json.h"
#include "tokenizer/tokenizer.h"

namespace mlkv {
namespace {

using testing::SmallMerges;
using testing::SmallTokenizerJson;

// Loads `text` and expects an error whose message contains every one of `words`.
void ExpectLoadError(const std::string& text, std::vector<std::string> words) {
  auto tokenizer = Tokenizer::FromJson(text);
  ASSERT_FALSE(tokenizer.ok()) << "loaded, expected an error mentioning " << words[0];
  const std::string message(tokenizer.status().message());
  for (const std::string& word : words) {
    EXPECT_NE(message.find(word), std::string::npos)
        << "error \"" << message << "\" does not mention \"" << word << "\"";
  }
}

void ExpectLoadError(const nlohmann::json& json, std::vector<std::string> words) {
  ExpectLoadError(json.dump(), std::move(words));
}

nlohmann::json Good() { return SmallTokenizerJson(SmallMerges()); }

TEST(TokenizerSpecTest, TheGoodFileLoads) {
  auto tokenizer = Tokenizer::FromJson(Good().dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
}

TEST(TokenizerSpecTest, BadJson) {
  ExpectLoadError(std::string("{\"model\": "), {"not valid JSON"});
  ExpectLoadError(std::string(""), {"not valid JSON"});
  ExpectLoadError(std::string("[1, 2]"), {"top level", "object"});
  ExpectLoadError(std::string("{\"a\": \"\xFF\"}"), {"not valid JSON"});
}

TEST(TokenizerSpecTest, MissingOrMalformedModel) {
  nlohmann::json json = Good();
  json.erase("model");
  ExpectLoadError(json, {"model", "missing"});
  json = Good();
  json["model"]["type"] = "WordPiece";
  ExpectLoadError(json, {"model.type", "WordPiece", "unsupported"});
  json = Good();
  json["model"].erase("vocab");
  ExpectLoadError(json, {"model.vocab", "missing"});
  json = Good();
  json["model"]["vocab"]["x"] = "seven";
  ExpectLoadError(json, {"model.vocab", "integer"});
  json = Good();
  json["model"]["vocab"]["x"] = 2000000000;  // would size the id table at 2^31
  ExpectLoadError(json, {"model.vocab", "2^24"});
  json = Good();
  json["model"]["vocab"]["\xC4\xA0the"] = 0;  // " the" now shares id 0 with byte 0x00
  ExpectLoadError(json, {"id 0", "both"});
  json = Good();
  json["model"]["vocab"].erase("a");
  ExpectLoadError(json, {"byte 0x61"});
  // Bytes that UTF-8 never contains need no token (GPT-NeoX has none for C0, C1, F5..FF).
  json = Good();
  json["model"]["vocab"].erase("\xC3\xBF");  // "ÿ" stands for byte 0xFF
  EXPECT_TRUE(Tokenizer::FromJson(json.dump()).ok());
}

TEST(TokenizerSpecTest, MergesNamingUnknownTokens) {
  nlohmann::json json = Good();
  json["model"]["merges"].push_back("zz q");
  ExpectLoadError(json, {"model.merges[9]", "\"zz\"", "not in the vocabulary"});
  json = Good();
  json["model"]["merges"].push_back("q z");  // both parts exist, "qz" does not
  ExpectLoadError(json, {"model.merges[9]", "makes \"qz\"", "not in the vocabulary"});
  json = Good();
  json["model"]["merges"].push_back("a b c");
  ExpectLoadError(json, {"model.merges[9]", "one space"});
  json = Good();
  json["model"]["merges"].push_back(nlohmann::json::array({"a"}));
  ExpectLoadError(json, {"model.merges[9]"});
  json = Good();
  json["model"].erase("merges");
  ExpectLoadError(json, {"model.merges", "missing"});
}

TEST(TokenizerSpecTest, UnknownPreTokenizer) {
  nlohmann::json json = Good();
  json["pre_tokenizer"] = {{"type", "Whitespace"}};
  ExpectLoadError(json, {"pre_tokenizer", "Whitespace", "unsupported"});
  json["pre_tokenizer"] = nullptr;
  ExpectLoadError(json, {"pre_tokenizer", "unsupported"});
  json["pre_tokenizer"] = {{"add_prefix_space", true}};
  ExpectLoadError(json, {"pre_tokenizer.type", "missing"});
  json["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", "yes"}};
  ExpectLoadError(json, {"pre_tokenizer.add_prefix_space", "true or false"});
}

TEST(TokenizerSpecTest, UnsupportedNormalizer) {
  nlohmann::json json = Good();
  json["normalizer"] = {{"type", "NFKC"}};
  ExpectLoadError(json, {"normalizer", "NFKC", "unsupported"});
  json["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  ExpectLoadError(json, {"normalizer.normalizers[1]", "Lowercase"});
  json["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}}}};
  EXPECT_TRUE(Tokenizer::FromJson(json.dump()).ok());
  json["normalizer"] = nullptr;
  EXPECT_TRUE(Tokenizer::FromJson(json.dump()).ok());
}

TEST(TokenizerSpecTest, UnsupportedDecoderPostProcessorAndModelOptions) {
  nlohmann::json json = Good();
  json["decoder"] = {{"type", "WordPiece"}};
  ExpectLoadError(json, {"decoder", "WordPiece"});
  json = Good();
  json["post_processor"] = {{"type", "TemplateProcessing"}};
  ExpectLoadError(json, {"post_processor", "TemplateProcessing"});
  json = Good();
  json["truncation"] = {{"max_length", 5}};
  ExpectLoadError(json, {"truncation"});
  json = Good();
  json["model"]["dropout"] = 0.1;
  ExpectLoadError(json, {"model.dropout"});
  json = Good();
  json["model"]["continuing_subword_prefix"] = "##";
  ExpectLoadError(json, {"model.continuing_subword_prefix"});
  json = Good();
  json["model"]["byte_fallback"] = true;
  ExpectLoadError(json, {"model.byte_fallback"});
}

TEST(TokenizerSpecTest, BadAddedTokens) {
  nlohmann::json json = Good();
  json["added_tokens"].push_back({{"id", 999}, {"content", "<x>"}});
  ExpectLoadError(json, {"added_tokens[1]", "<x>", "id 999", "266"});
  json = Good();
  json["added_tokens"].push_back(json["added_tokens"][0]);
  ExpectLoadError(json, {"added_tokens[1]", "more than once"});
  json = Good();
  json["added_tokens"][0].erase("content");
  ExpectLoadError(json, {"added_tokens[0].content"});
  json = Good();
  json["added_tokens"][0]["lstrip"] = 1;
  ExpectLoadError(json, {"added_tokens[0].lstrip"});
  json = Good();
  json["added_tokens"] = "none";
  ExpectLoadError(json, {"added_tokens", "array"});
}

TEST(TokenizerSpecTest, FileErrorsNameThePath) {
  auto missing = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/tokenizer.json"), std::string::npos);
}

}  // namespace
}  // namespace mlkv
