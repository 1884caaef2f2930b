// Tests of the UTF-8 helpers, in particular that ill-formed bytes are repaired as Rust's
// from_utf8_lossy (and so Hugging Face decoding) repairs them.
#include "tokenizer/utf8.h"

#include "gtest/gtest.h"

namespace mlkv::utf8 {
namespace {

std::string Lossy(std::string_view bytes) {
  std::string out;
  AppendLossy(bytes, &out);
  return out;
}

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidatesWellFormedText) {
  EXPECT_TRUE(IsValid(""));
  EXPECT_TRUE(IsValid("plain ASCII"));
  EXPECT_TRUE(IsValid("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80"));
  EXPECT_TRUE(IsValid(std::string("nul\0inside", 10)));
  EXPECT_FALSE(IsValid("\x80"));              // lone continuation
  EXPECT_FALSE(IsValid("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValid("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValid("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValid("\xE6\x97"));          // truncated
  EXPECT_EQ(FirstInvalidOffset("ab\xFF"), 2u);
}

TEST(Utf8Test, ReplacesEachMaximalSubpartOnce) {
  EXPECT_EQ(Lossy("a\xF0\x9F\x98"), std::string("a") + kFffd);  // truncated 4-byte: one
  EXPECT_EQ(Lossy("\xE0\x80"), std::string(kFffd) + kFffd);     // E0 80: two
  EXPECT_EQ(Lossy("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);
  EXPECT_EQ(Lossy("\xF0\x9F\x98x"), std::string(kFffd) + "x");
  EXPECT_EQ(Lossy("\xC3\xA9\xFF\xC3\xA9"), std::string("\xC3\xA9") + kFffd + "\xC3\xA9");
}

TEST(Utf8Test, FindsTheIncompleteSuffix) {
  EXPECT_EQ(IncompleteSuffixLength(""), 0);
  EXPECT_EQ(IncompleteSuffixLength("abc"), 0);
  EXPECT_EQ(IncompleteSuffixLength("ab\xC3"), 1);
  EXPECT_EQ(IncompleteSuffixLength("\xE6\x97"), 2);
  EXPECT_EQ(IncompleteSuffixLength("x\xF0\x9F\x98"), 3);
  EXPECT_EQ(IncompleteSuffixLength("\xF0\x9F\x98\x80"), 0);  // complete
  EXPECT_EQ(IncompleteSuffixLength("\x80"), 0);              // can never complete
  EXPECT_EQ(IncompleteSuffixLength("\xE0\x80"), 0);          // E0 80 is already ill-formed
  EXPECT_EQ(IncompleteSuffixLength("\xF5"), 0);
}

TEST(Utf8Test, DecodesAndEncodesCodePoints) {
  for (char32_t cp : {U'A', U'\u00E9', U'\u65E5', U'\U0001F600', U'\U0010FFFF'}) {
    std::string bytes;
    Append(cp, &bytes);
    int length = 0;
    EXPECT_EQ(DecodeAt(bytes, 0, &length), cp);
    EXPECT_EQ(static_cast<size_t>(length), bytes.size());
    EXPECT_EQ(DecodeBefore("x" + bytes, bytes.size() + 1), cp);
  }
}

}  // namespace
}  // namespace mlkv::utf8
