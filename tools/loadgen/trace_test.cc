// JSONL traces: good lines, and every kind of bad line named by its number.
#include "tools/loadgen/trace.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<std::vector<TraceEntry>> Parse(const std::string& text) {
  std::istringstream in(text);
  return ParseTrace(in, "t.jsonl");
}

TEST(TraceTest, ReadsTextAndLengthLinesSkippingBlanks) {
  auto trace = Parse(
      "{\"prompt\": \"hello there\", \"output_len\": 5, \"timestamp\": 1.5}\n"
      "\n"
      "  {\"prompt_len\": 300, \"output_len\": 20}\n");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->size(), 2u);
  EXPECT_EQ((*trace)[0].prompt, "hello there");
  EXPECT_EQ((*trace)[0].output_len, 5);
  EXPECT_FALSE((*trace)[1].prompt.has_value());
  EXPECT_EQ((*trace)[1].prompt_len, 300);
  EXPECT_EQ((*trace)[1].output_len, 20);
}

TEST(TraceTest, BadLinesAreNamedByNumber) {
  const std::string good = "{\"prompt_len\": 3, \"output_len\": 4}\n";
  const std::pair<std::string, std::string> cases[] = {
      {"{\"prompt_len\": 3, \"output_len\": 4", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"output_len\": 4}", "needs exactly one of"},
      {"{\"prompt\": \"a\", \"prompt_len\": 3, \"output_len\": 4}", "needs exactly one of"},
      {"{\"prompt\": 7, \"output_len\": 4}", "prompt: must be a non-empty string"},
      {"{\"prompt\": \"\", \"output_len\": 4}", "prompt: must be a non-empty string"},
      {"{\"prompt_len\": 0, \"output_len\": 4}", "prompt_len: must be an integer"},
      {"{\"prompt_len\": 2.5, \"output_len\": 4}", "prompt_len: must be an integer"},
      {"{\"prompt_len\": 3}", "output_len: missing"},
      {"{\"prompt_len\": 3, \"output_len\": \"4\"}", "output_len: must be an integer"},
  };
  for (const auto& [line, why] : cases) {
    auto trace = Parse(good + "\n" + line + "\n" + good);
    ASSERT_FALSE(trace.ok()) << line;
    EXPECT_THAT(trace.status().message(), HasSubstr("t.jsonl:3: " + why)) << line;
  }
}

TEST(TraceTest, EmptyTraceAndMissingFileAreErrors) {
  EXPECT_THAT(Parse("\n\n").status().message(), HasSubstr("t.jsonl: no requests"));
  auto missing = ReadTraceFile("/nonexistent/trace.jsonl");
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/trace.jsonl: cannot be opened"));
}

}  // namespace
}  // namespace mlkv::loadgen
