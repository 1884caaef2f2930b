// The command-line flag parser: both spellings, switches, --help, and an error naming the flag
// for each class of bad input.
#include "cli/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FlagsTest, ParsesBothSpellingsAndSwitches) {
  auto flags =
      Flags::Parse({"--model", "m", "--top-p=0.5", "--ignore-eos", "--token-ids", "1, 2,3"},
                   {"model", "top-p", "token-ids"}, {"ignore-eos"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_EQ(*flags->RequiredString("model"), "m");
  EXPECT_EQ(*flags->Double("top-p", 1.0, 0.0, 1.0), 0.5);
  EXPECT_TRUE(flags->Switch("ignore-eos"));
  EXPECT_THAT(*flags->IntList("token-ids", 0, 10), ElementsAre(1, 2, 3));
  EXPECT_EQ(*flags->Int("absent", 7, 0, 10), 7);
}

void ExpectError(const absl::Status& status, const std::string& text) {
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(text));
}

TEST(FlagsTest, RepeatableFlagsKeepEveryOccurrence) {
  auto flags = Flags::Parse({"--ids", "1,2", "--ids=3"}, {"ids"}, {}, {"ids"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  auto lists = flags->IntLists("ids", 0, 10);
  ASSERT_TRUE(lists.ok()) << lists.status();
  ASSERT_EQ(lists->size(), 2u);
  EXPECT_THAT((*lists)[0], ElementsAre(1, 2));
  EXPECT_THAT((*lists)[1], ElementsAre(3));
  EXPECT_THAT(*flags->IntList("ids", 0, 10), ElementsAre(1, 2));  // the first occurrence
  EXPECT_THAT(flags->Strings("ids"), ElementsAre("1,2", "3"));
  EXPECT_TRUE(flags->Strings("absent").empty());
}

TEST(FlagsTest, RefusesMalformedCommandLines) {
  ExpectError(Flags::Parse({"--nope", "1"}, {"model"}).status(), "unknown flag --nope");
  ExpectError(Flags::Parse({"model"}, {"model"}).status(), "unexpected argument");
  ExpectError(Flags::Parse({"--model"}, {"model"}).status(), "--model: needs a value");
  ExpectError(Flags::Parse({"--model", "a", "--model", "b"}, {"model"}).status(), "more than once");
  ExpectError(Flags::Parse({"--ignore-eos=1"}, {}, {"ignore-eos"}).status(), "takes no value");
}

TEST(FlagsTest, RefusesBadValuesNamingTheFlag) {
  auto flags = Flags::Parse({"--n", "x", "--m", "5", "--p", "nan", "--ids", "1,,2", "--e", ""},
                            {"n", "m", "p", "ids", "e"});
  ASSERT_TRUE(flags.ok());
  ExpectError(flags->Int("n", 0, 0, 10).status(), "--n: expected an integer");
  ExpectError(flags->Int("m", 0, 0, 4).status(), "--m: must be in [0, 4], got 5");
  ExpectError(flags->Double("p", 0, 0, 1).status(), "--p: expected a number");
  ExpectError(flags->IntList("ids", 0, 10).status(), "--ids: expected an integer");
  ExpectError(flags->RequiredString("e").status(), "--e: must not be empty");
  ExpectError(flags->RequiredString("absent").status(), "--absent: is required");
}

// --help wins over anything else given, even a bad flag, and the usage lists what parses.
TEST(FlagsTest, HelpListsTheFlagsThatParse) {
  auto flags =
      Flags::Parse({"--unknown", "--help"}, {"model", "token-ids"}, {"ignore-eos"}, {"token-ids"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_TRUE(flags->help());
  EXPECT_FALSE(flags->Has("unknown"));
  EXPECT_EQ(flags->Usage("mlkv x"),
            "usage: mlkv x [FLAGS]\n\nflags:\n  --ignore-eos\n  --model VALUE\n"
            "  --token-ids VALUE  (may be repeated)\n  --help  this list\n");
}

TEST(FlagsTest, AHelpFlagOfTheCommandIsItsOwn) {
  auto flags = Flags::Parse({"--help"}, {}, {"help"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  EXPECT_FALSE(flags->help());
  EXPECT_TRUE(flags->Switch("help"));
}

}  // namespace
}  // namespace mlkv::cli
