// Tests of streaming detokenization: at every split point of multi-byte characters the decoder
// releases exactly the complete characters, and the deltas always add up to Decode(all ids).
#include "tokenizer/incremental_decoder.h"

#include <random>

#include "gtest/gtest.h"
#include "tokenizer/test_tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace mlkv {
namespace {

using Ids = std::vector<int32_t>;

std::unique_ptr<Tokenizer> ByteTokenizer() {
  auto tokenizer = Tokenizer::FromJson(testing::SmallTokenizerJson({}).dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return *std::move(tokenizer);
}

// With no merges, the ids of a byte string are its bytes.
Ids ByteIds(std::string_view bytes) {
  Ids ids;
  for (char c : bytes) ids.push_back(static_cast<uint8_t>(c));
  return ids;
}

// Streams `ids` and returns the deltas; checks that each delta is well-formed UTF-8.
std::vector<std::string> Stream(IncrementalDecoder* decoder, const Ids& ids) {
  std::vector<std::string> deltas;
  for (int32_t id : ids) {
    auto delta = decoder->Add(id);
    EXPECT_TRUE(delta.ok()) << delta.status();
    EXPECT_TRUE(utf8::IsValid(*delta));
    EXPECT_LE(decoder->pending_bytes(), 3u);
    deltas.push_back(*delta);
  }
  return deltas;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += part;
  return out;
}

// The longest prefix of the well-formed `text` that ends on a character boundary within
// `bytes` bytes.
std::string CompletePrefix(std::string_view text, size_t bytes) {
  size_t end = bytes;
  while (end > 0 && end < text.size() && (static_cast<uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end));
}

TEST(IncrementalDecoderTest, EverySplitPointOfMultiByteCharacters) {
  auto tokenizer = ByteTokenizer();
  // 2-, 3- and 4-byte characters, a combining mark, and an emoji ZWJ sequence.
  const std::string text =
      "a\xC3\xA9z \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 e\xCC\x81 "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7!";
  for (size_t split = 0; split <= text.size(); ++split) {
    IncrementalDecoder decoder(tokenizer.get());
    const std::string first = Join(Stream(&decoder, ByteIds(text.substr(0, split))));
    EXPECT_EQ(first, CompletePrefix(text, split)) << "split at byte " << split;
    const std::string rest = Join(Stream(&decoder, ByteIds(text.substr(split))));
    EXPECT_EQ(first + rest + decoder.Flush(), text) << "split at byte " << split;
  }
}

TEST(IncrementalDecoderTest, MultiByteTokensThatEndMidCharacter) {
  // Merges that make tokens ending inside "é" (C3 A9) and "日" (E6 97 A5).
  auto tokenizer = Tokenizer::FromJson(
      testing::SmallTokenizerJson({{"a", "\xC3"}, {"\xA9", "b"}, {"\xE6", "\x97"}}).dump());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::string text =
      "a\xC3\xA9"
      "b\xE6\x97\xA5";
  const Ids ids = *(*tokenizer)->Encode(text);
  ASSERT_EQ(ids.size(), 4u);  // "a\xC3", "\xA9" "b", "\xE6\x97", "\xA5"
  IncrementalDecoder decoder(tokenizer->get());
  const std::vector<std::string> deltas = Stream(&decoder, ids);
  EXPECT_EQ(deltas, (std::vector<std::string>{"a",
                                              "\xC3\xA9"
                                              "b",
                                              "", "\xE6\x97\xA5"}));
  EXPECT_EQ(Join(deltas) + decoder.Flush(), text);
}

TEST(IncrementalDecoderTest, IllFormedBytesDecodeAsInTheWhole) {
  auto tokenizer = ByteTokenizer();
  // Bytes biased towards lead and continuation bytes, so truncations and bad sequences abound.
  std::mt19937 rng(99);
  const uint8_t interesting[] = {0x41, 0x80, 0x9F, 0xA0, 0xBF, 0xC2, 0xC3, 0xDF, 0xE0,
                                 0xE6, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0x8D, 0x20};
  for (int trial = 0; trial < 3000; ++trial) {
    Ids ids(rng() % 12);
    for (int32_t& id : ids) id = interesting[rng() % sizeof(interesting)];
    IncrementalDecoder decoder(tokenizer.get());
    std::string streamed = Join(Stream(&decoder, ids));
    streamed += decoder.Flush();  // after the stream: `a + b` would not order the calls
    ASSERT_EQ(streamed, *tokenizer->Decode(ids)) << "trial " << trial;
    EXPECT_EQ(decoder.pending_bytes(), 0u);
  }
}

TEST(IncrementalDecoderTest, FlushReleasesATruncatedCharacterAsReplacement) {
  auto tokenizer = ByteTokenizer();
  IncrementalDecoder decoder(tokenizer.get());
  EXPECT_EQ(*decoder.Add(0xF0), "");
  EXPECT_EQ(*decoder.Add(0x9F), "");
  EXPECT_EQ(decoder.pending_bytes(), 2u);
  EXPECT_EQ(decoder.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(*decoder.Add('x'), "x");  // a fresh stream after Flush
}

TEST(IncrementalDecoderTest, RejectsUnknownIdsAndSkipsSpecialTokensOnRequest) {
  auto tokenizer = ByteTokenizer();
  const int32_t eot = *tokenizer->TokenToId("<|endoftext|>");
  IncrementalDecoder keep(tokenizer.get());
  EXPECT_FALSE(keep.Add(123456).ok());
  EXPECT_EQ(*keep.Add(eot), "<|endoftext|>");
  IncrementalDecoder skip(tokenizer.get(), {.skip_special_tokens = true});
  EXPECT_EQ(*skip.Add('a'), "a");
  EXPECT_EQ(*skip.Add(eot), "");
}

}  // namespace
}  // namespace mlkv
