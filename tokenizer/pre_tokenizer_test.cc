// Tests of the GPT-2 split, above all the emulated `\s+(?!\S)` lookahead and Unicode classes.
#include "tokenizer/pre_tokenizer.h"

#include "gtest/gtest.h"

namespace mlkv {
namespace {

std::vector<std::string> Words(std::string_view text, bool add_prefix_space = false,
                               bool use_regex = true) {
  ByteLevelPreTokenizer pre(add_prefix_space, use_regex);
  std::string scratch;
  std::vector<std::string_view> views;
  pre.Split(text, &scratch, &views);
  return std::vector<std::string>(views.begin(), views.end());
}

using V = std::vector<std::string>;

TEST(PreTokenizerTest, SplitsWordsNumbersAndPunctuation) {
  EXPECT_EQ(Words("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(Words("123 4567,89"), (V{"123", " 4567", ",", "89"}));
  EXPECT_EQ(Words("hi!! (x)"), (V{"hi", "!!", " (", "x", ")"}));
}

TEST(PreTokenizerTest, SplitsContractionsCaseSensitively) {
  EXPECT_EQ(Words("I'm don't we'll"), (V{"I", "'m", " don", "'t", " we", "'ll"}));
  EXPECT_EQ(Words("I'M"), (V{"I", "'", "M"}));
}

TEST(PreTokenizerTest, WhitespaceRunsLeaveTheirLastCharacterToTheNextWord) {
  EXPECT_EQ(Words("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(Words("a    b"), (V{"a", "   ", " b"}));
  EXPECT_EQ(Words("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(Words("a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(Words("a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(Words("end   "), (V{"end", "   "}));  // at the end: the whole run
  EXPECT_EQ(Words("   "), (V{"   "}));
  EXPECT_EQ(Words(" "), (V{" "}));
}

TEST(PreTokenizerTest, UsesUnicodeWhitespaceLettersAndNumbers) {
  // U+00A0 is whitespace but not the space that ` ?\p{L}+` takes.
  EXPECT_EQ(Words(" \xC2\xA0x"), (V{" ", "\xC2\xA0", "x"}));
  EXPECT_EQ(Words("a\xE3\x80\x80\xE3\x80\x80"
                  "b"),
            (V{"a", "\xE3\x80\x80", "\xE3\x80\x80", "b"}));
  EXPECT_EQ(Words("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC"),
            (V{"caf\xC3\xA9", " \xE6\x97\xA5\xE6\x9C\xAC"}));
  EXPECT_EQ(Words("\xD9\xA3\xD9\xA4x"), (V{"\xD9\xA3\xD9\xA4", "x"}));  // Arabic-Indic digits
}

TEST(PreTokenizerTest, AddsAPrefixSpaceUnlessThereIsOne) {
  EXPECT_EQ(Words("hi there", true), (V{" hi", " there"}));
  EXPECT_EQ(Words(" hi", true), (V{" hi"}));
}

TEST(PreTokenizerTest, WithoutTheRegexTheWholeTextIsOneWord) {
  EXPECT_EQ(Words("a  b c", false, false), (V{"a  b c"}));
}

}  // namespace
}  // namespace mlkv
