// OutputText over the random models' byte-level tokenizer, where each byte is one token, so a
// test picks exactly where characters and stop strings are split between tokens.
#include "engine/output_text.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/random_model.h"

namespace mlkv {
namespace {

using ::testing::HasSubstr;

constexpr int32_t kEos = 0;

std::unique_ptr<Tokenizer> ByteTokenizer() {
  ModelConfig config;
  config.vocab_size = 257;
  config.eos_token_id = kEos;
  auto tokenizer = Tokenizer::FromJson(ByteLevelTokenizerJson(config)->dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

struct Streamed {
  std::vector<std::string> pieces;  // one per Add, then Finish's
  std::string text;
  std::optional<std::string> stop_string;
  size_t stopped_after = 0;  // tokens added up to and including the one that matched
};

Streamed Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                std::vector<std::string> stops) {
  auto output = OutputText::Create(&tokenizer, std::move(stops));
  EXPECT_TRUE(output.ok()) << output.status();
  Streamed s;
  auto take = [&](OutputText::Piece piece) {
    s.text += piece.text;
    s.pieces.push_back(std::move(piece.text));
    if (piece.stop_string) {
      EXPECT_FALSE(s.stop_string) << "a second stop";
      s.stop_string = piece.stop_string;
      s.stopped_after = s.pieces.size();
    }
  };
  for (int32_t id : ids) take(output->Add(id));
  take(output->Finish());
  return s;
}

TEST(OutputTextTest, StopStringAcrossTokensCutsTheTextBeforeIt) {
  auto tokenizer = ByteTokenizer();
  const std::vector<int32_t> ids = *tokenizer->Encode("Hello\n\nWorld and more");
  const Streamed s = Stream(*tokenizer, ids, {"xyz", "\n\nWo"});
  EXPECT_EQ(s.text, "Hello");
  EXPECT_EQ(s.stop_string, "\n\nWo");
  EXPECT_EQ(s.stopped_after, 9u);  // "Hello\n\nWo" is 9 tokens
  // Nothing after the match, and "\n" was held back while it could still start the stop string.
  for (size_t i = s.stopped_after; i < s.pieces.size(); ++i) EXPECT_EQ(s.pieces[i], "") << i;
  EXPECT_EQ(s.pieces[5], "");
}

TEST(OutputTextTest, WithoutAMatchThePiecesAreTheDecodedText) {
  auto tokenizer = ByteTokenizer();
  // An emoji split over four tokens, the special EOS (no text) and an id the tokenizer lacks
  // (a padded model vocabulary; no text, as in Hugging Face).
  std::vector<int32_t> ids = *tokenizer->Encode("a \xF0\x9F\x98\x80 b");
  ids.push_back(kEos);
  ids.push_back(400);
  const Streamed s = Stream(*tokenizer, ids, {"zzz"});
  EXPECT_EQ(s.text, "a \xF0\x9F\x98\x80 b");
  EXPECT_FALSE(s.stop_string);
  EXPECT_EQ(s.pieces[2] + s.pieces[3] + s.pieces[4], "") << "a partial character is held back";
  EXPECT_EQ(s.pieces[5], "\xF0\x9F\x98\x80");
}

TEST(OutputTextTest, FinishReleasesHeldTextAndCanCompleteAMatch) {
  auto tokenizer = ByteTokenizer();
  // "ab" waits for a possible "abc"; the stream ends, so Finish releases it.
  EXPECT_EQ(Stream(*tokenizer, *tokenizer->Encode("xab"), {"abc"}).pieces.back(), "ab");
  // A truncated character becomes U+FFFD at the end, which completes "b\uFFFD".
  std::vector<int32_t> ids = *tokenizer->Encode("ab");
  ids.push_back(ids[0] - 'a' + 0xE2);  // a lone 3-byte lead byte
  const Streamed s = Stream(*tokenizer, ids, {"b\xEF\xBF\xBD"});
  EXPECT_EQ(s.text, "a");
  EXPECT_EQ(s.stop_string, "b\xEF\xBF\xBD");
}

TEST(OutputTextTest, BadStopStringsAreRefusedNamingTheField) {
  auto tokenizer = ByteTokenizer();
  for (const std::vector<std::string>& stops :
       {std::vector<std::string>{"ok", ""}, std::vector<std::string>{"\xC3"}}) {
    auto output = OutputText::Create(tokenizer.get(), stops);
    ASSERT_FALSE(output.ok());
    EXPECT_EQ(output.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(output.status().message()), HasSubstr("stop: stop string"));
  }
}

}  // namespace
}  // namespace mlkv
