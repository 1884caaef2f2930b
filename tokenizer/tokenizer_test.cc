// Tests of encoding and decoding with small tokenizers built in code: BPE words, NFC, added
// tokens and their flags, prefix space, decoding options, and concurrent encoding.
#include "tokenizer/tokenizer.h"

#include <thread>

#include "gtest/gtest.h"
#include "tokenizer/test_tokenizer_json.h"

namespace mlkv {
namespace {

using testing::SmallMergeId;
using testing::SmallMerges;
using testing::SmallTokenizerJson;
using Ids = std::vector<int32_t>;

constexpr int32_t kEndOfText = 265;  // 256 bytes + 9 merges
constexpr int32_t kThe = 258;        // " the"
constexpr int32_t kIng = 260;
constexpr int32_t kEAcute = 264;  // "é" (C3 A9)

std::unique_ptr<Tokenizer> Load(const nlohmann::json& json) {
  auto tokenizer = Tokenizer::FromJson(json.dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

Ids Encode(const Tokenizer& tokenizer, std::string_view text) {
  auto ids = tokenizer.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : Ids{};
}

// Adds a token after the vocabulary (and any added before it), as Hugging Face numbers them.
void AddToken(nlohmann::json* json, const std::string& content, nlohmann::json flags) {
  const int32_t id =
      static_cast<int32_t>((*json)["model"]["vocab"].size() + (*json)["added_tokens"].size() - 1);
  flags["id"] = id;
  flags["content"] = content;
  (*json)["added_tokens"].push_back(flags);
}

TEST(TokenizerTest, EncodesWordsWithMerges) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Encode(*tokenizer, " the thing"), (Ids{kThe, ' ', 't', 'h', kIng}));
  EXPECT_EQ(Encode(*tokenizer, "the"), (Ids{SmallMergeId(1)}));
  EXPECT_EQ(Encode(*tokenizer, ""), Ids{});
  EXPECT_EQ(tokenizer->vocab_size(), kEndOfText + 1);
}

TEST(TokenizerTest, NormalizesToNfcBeforeBpe) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Encode(*tokenizer, "e\xCC\x81"), (Ids{kEAcute}));  // e + combining acute
  EXPECT_EQ(Encode(*tokenizer, "\xC3\xA9"), (Ids{kEAcute}));
  EXPECT_EQ(*tokenizer->Decode(Encode(*tokenizer, "e\xCC\x81")), "\xC3\xA9");
}

TEST(TokenizerTest, FindsSpecialTokensInTheRawText) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Encode(*tokenizer, "a<|endoftext|> the"), (Ids{'a', kEndOfText, kThe}));
  EXPECT_EQ(Encode(*tokenizer, "<|endoftext|><|endoftext|>"), (Ids{kEndOfText, kEndOfText}));
  EXPECT_EQ(Encode(*tokenizer, "<|endoftext|"),
            (Ids{'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|'}));
}

TEST(TokenizerTest, RejectsTextThatIsNotUtf8) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  auto ids = tokenizer->Encode("ok\xFF");
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("not valid UTF-8"), std::string_view::npos);
  EXPECT_NE(ids.status().message().find("offset 2"), std::string_view::npos);
}

TEST(TokenizerTest, DecodesAndOptionallySkipsSpecialTokens) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "the thing<|endoftext|> and caf\xC3\xA9";
  const Ids ids = Encode(*tokenizer, text);
  EXPECT_EQ(*tokenizer->Decode(ids), text);
  EXPECT_EQ(*tokenizer->Decode(ids, {.skip_special_tokens = true}), "the thing and caf\xC3\xA9");
  EXPECT_EQ(*tokenizer->Decode(Ids{0xC3}), "\xEF\xBF\xBD");  // half a character
  auto bad = tokenizer->Decode(Ids{'a', 9999});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("9999"), std::string_view::npos);
  EXPECT_FALSE(tokenizer->Decode(Ids{-1}).ok());
}

TEST(TokenizerTest, LooksUpTokensByText) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->TokenToId("<|endoftext|>"), kEndOfText);
  EXPECT_EQ(tokenizer->TokenToId("\xC4\xA0the"), kThe);  // "Ġthe"
  EXPECT_EQ(tokenizer->TokenToId("nope"), std::nullopt);
  EXPECT_TRUE(tokenizer->IsSpecial(kEndOfText));
  EXPECT_FALSE(tokenizer->IsSpecial('a'));
}

TEST(TokenizerTest, AddsAPrefixSpaceToEachStretchOfText) {
  nlohmann::json json = SmallTokenizerJson(SmallMerges());
  json["pre_tokenizer"]["add_prefix_space"] = true;
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Encode(*tokenizer, "the"), (Ids{kThe}));
  EXPECT_EQ(Encode(*tokenizer, " the"), (Ids{kThe}));
  EXPECT_EQ(Encode(*tokenizer, "<|endoftext|>the"), (Ids{kEndOfText, kThe}));
}

TEST(TokenizerTest, HonoursLstripAndRstrip) {
  nlohmann::json json = SmallTokenizerJson(SmallMerges());
  AddToken(&json, "<l>", {{"special", true}, {"normalized", false}, {"lstrip", true}});
  AddToken(&json, "<r>", {{"special", true}, {"normalized", false}, {"rstrip", true}});
  AddToken(&json, "<n>", {{"special", true}, {"normalized", false}});
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  const int32_t l = kEndOfText + 1, r = kEndOfText + 2, n = kEndOfText + 3;
  EXPECT_EQ(Encode(*tokenizer, "a \t<l>b"), (Ids{'a', l, 'b'}));
  EXPECT_EQ(Encode(*tokenizer, "a<r> \n b"), (Ids{'a', r, 'b'}));
  EXPECT_EQ(Encode(*tokenizer, "a  <n>  b"), (Ids{'a', ' ', ' ', n, ' ', ' ', 'b'}));
  // Stripped whitespace belongs to the token, so decoding restores it.
  EXPECT_EQ(*tokenizer->Decode(Ids{'a', l, 'b'}), "a<l>b");
}

TEST(TokenizerTest, SingleWordTokensMatchOnlyWholeWords) {
  nlohmann::json json = SmallTokenizerJson(SmallMerges());
  AddToken(&json, "cat", {{"single_word", true}});
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  const int32_t cat = kEndOfText + 1;
  EXPECT_EQ(Encode(*tokenizer, "cat"), (Ids{cat}));
  EXPECT_EQ(Encode(*tokenizer, "a cat."), (Ids{'a', ' ', cat, '.'}));
  EXPECT_EQ(Encode(*tokenizer, "cats"), (Ids{'c', 'a', 't', 's'}));
  EXPECT_EQ(Encode(*tokenizer,
                   "\xC3\xA9"
                   "cat"),
            (Ids{kEAcute, 'c', 'a', 't'}));
}

TEST(TokenizerTest, MatchesNormalizedTokensInNormalizedText) {
  nlohmann::json json = SmallTokenizerJson(SmallMerges());
  AddToken(&json, "ae\xCC\x81", {{"normalized", true}});  // matched as "aé"
  AddToken(&json, "  ", {{"normalized", true}});
  auto tokenizer = Load(json);
  ASSERT_NE(tokenizer, nullptr);
  const int32_t ae = kEndOfText + 1, two_spaces = kEndOfText + 2;
  EXPECT_EQ(Encode(*tokenizer, "xa\xC3\xA9"), (Ids{'x', ae}));
  EXPECT_EQ(Encode(*tokenizer, "xae\xCC\x81"), (Ids{'x', ae}));
  // Leftmost, then longest: five spaces are two tokens and a space.
  EXPECT_EQ(Encode(*tokenizer, "a     b"), (Ids{'a', two_spaces, two_spaces, ' ', 'b'}));
  // The ByteLevel decoder keeps raw bytes of a token it cannot map.
  EXPECT_EQ(*tokenizer->Decode(Ids{two_spaces}), "  ");
}

TEST(TokenizerTest, MergesMayBeWrittenAsPairs) {
  nlohmann::json strings = SmallTokenizerJson(SmallMerges());
  nlohmann::json pairs = strings;
  pairs["model"]["merges"] = nlohmann::json::array();
  for (const auto& merge : strings["model"]["merges"]) {
    const std::string text = merge.get<std::string>();
    const size_t space = text.find(' ');
    pairs["model"]["merges"].push_back({text.substr(0, space), text.substr(space + 1)});
  }
  auto a = Load(strings), b = Load(pairs);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (const char* text : {" the thing", "and sand", "caf\xC3\xA9"}) {
    EXPECT_EQ(Encode(*a, text), Encode(*b, text)) << text;
  }
}

TEST(TokenizerTest, EncodesFromManyThreadsAtOnce) {
  auto tokenizer = Load(SmallTokenizerJson(SmallMerges()));
  ASSERT_NE(tokenizer, nullptr);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("the thing " + std::to_string(i * 7919) + " and sing" +
                    std::string(i % 5, 'a'));
  }
  std::vector<Ids> expected;
  for (const auto& text : texts) expected.push_back(Encode(*tokenizer, text));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (size_t i = (t + round) % texts.size(), n = 0; n < texts.size();
             ++n, i = (i + 1) % texts.size()) {
          auto ids = tokenizer->Encode(texts[i]);
          if (!ids.ok() || *ids != expected[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace mlkv
