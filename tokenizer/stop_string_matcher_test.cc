// Tests of stop strings over streamed deltas: matches across deltas, held-back text, the first
// match winning, and the output trimmed at the match.
#include "tokenizer/stop_string_matcher.h"

#include "gtest/gtest.h"

namespace mlkv {
namespace {

StopStringMatcher Make(std::vector<std::string> stops) {
  auto matcher = StopStringMatcher::Create(std::move(stops));
  EXPECT_TRUE(matcher.ok()) << matcher.status();
  return *std::move(matcher);
}

// Feeds the deltas; returns all released text and the match.
std::pair<std::string, std::optional<size_t>> FeedAll(StopStringMatcher* matcher,
                                                      const std::vector<std::string>& deltas) {
  std::string out;
  for (const std::string& delta : deltas) {
    StopStringMatcher::Result result = matcher->Feed(delta);
    out += result.text;
    if (result.stop) return {out, result.stop};
  }
  out += matcher->Flush();
  return {out, std::nullopt};
}

TEST(StopStringMatcherTest, FindsAStopStringInsideOneDelta) {
  StopStringMatcher matcher = Make({"END"});
  auto [text, stop] = FeedAll(&matcher, {"hello END world"});
  EXPECT_EQ(text, "hello ");
  EXPECT_EQ(stop, 0u);
  EXPECT_TRUE(matcher.matched());
}

TEST(StopStringMatcherTest, FindsAStopStringSpanningDeltas) {
  StopStringMatcher matcher = Make({"\n\nUser:"});
  EXPECT_EQ(matcher.Feed("Sure.\n").text, "Sure.");  // "\n" might start the stop string
  EXPECT_EQ(matcher.held_bytes(), 1u);
  StopStringMatcher::Result r = matcher.Feed("\nUs");
  EXPECT_EQ(r.text, "");
  EXPECT_FALSE(r.stop);
  r = matcher.Feed("er: hi");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.stop, 0u);
}

TEST(StopStringMatcherTest, ReleasesHeldTextWhenItStopsLookingLikeAStop) {
  StopStringMatcher matcher = Make({"STOP"});
  EXPECT_EQ(matcher.Feed("ab ST").text, "ab ");
  EXPECT_EQ(matcher.Feed("O").text, "");
  EXPECT_EQ(matcher.Feed("NE").text, "STONE");
  EXPECT_EQ(matcher.held_bytes(), 0u);
}

TEST(StopStringMatcherTest, EveryWayOfSplittingTheTextGivesTheSameResult) {
  const std::string text = "one two </s> three";
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); ++b) {
      StopStringMatcher matcher = Make({"</s>", "four"});
      auto [out, stop] =
          FeedAll(&matcher, {text.substr(0, a), text.substr(a, b - a), text.substr(b)});
      EXPECT_EQ(out, "one two ") << a << "," << b;
      EXPECT_EQ(stop, 0u);
    }
  }
}

TEST(StopStringMatcherTest, TheEarliestMatchWins) {
  StopStringMatcher matcher = Make({"cd", "bcde", "b"});
  auto [text, stop] = FeedAll(&matcher, {"a", "bcdef"});
  EXPECT_EQ(text, "a");
  EXPECT_EQ(stop, 1u);  // "bcde" and "b" both start at "b"; "bcde" is listed first
  StopStringMatcher later = Make({"xyz", "yz"});
  auto [text2, stop2] = FeedAll(&later, {"wx", "y", "z!"});
  EXPECT_EQ(text2, "w");
  EXPECT_EQ(stop2, 0u);
}

TEST(StopStringMatcherTest, OverlappingPrefixesAreHeldBack) {
  // "aab" after "aaa": the held "aa" must still allow a match that starts one byte later.
  StopStringMatcher matcher = Make({"aab"});
  auto [text, stop] = FeedAll(&matcher, {"xaa", "a", "b"});
  EXPECT_EQ(text, "xa");
  EXPECT_EQ(stop, 0u);
}

TEST(StopStringMatcherTest, WithoutAMatchFlushReleasesEverything) {
  StopStringMatcher matcher = Make({"\xE6\x97\xA5\xE6\x9C\xAC"});  // "日本"
  auto [text, stop] = FeedAll(&matcher, {"\xE6\x97\xA5", "x", "\xE6\x97\xA5"});
  EXPECT_EQ(text, "\xE6\x97\xA5x\xE6\x97\xA5");
  EXPECT_FALSE(stop);
}

TEST(StopStringMatcherTest, NothingIsReleasedAfterAMatch) {
  StopStringMatcher matcher = Make({"!"});
  EXPECT_EQ(matcher.Feed("hi!").text, "hi");
  StopStringMatcher::Result after = matcher.Feed("more");
  EXPECT_EQ(after.text, "");
  EXPECT_EQ(after.stop, 0u);
  EXPECT_EQ(matcher.Flush(), "");
}

TEST(StopStringMatcherTest, NoStopStringsPassesTextThrough) {
  StopStringMatcher matcher = Make({});
  EXPECT_EQ(matcher.Feed("anything").text, "anything");
}

TEST(StopStringMatcherTest, RejectsAnEmptyStopString) {
  auto matcher = StopStringMatcher::Create({"ok", ""});
  ASSERT_FALSE(matcher.ok());
  EXPECT_NE(matcher.status().message().find("stop string 1 is empty"), std::string::npos);
}

}  // namespace
}  // namespace mlkv
