// SamplingParams::Validate: the edges of every range pass, and each class of bad value is refused
// with InvalidArgument naming the field.
#include "engine/sampling_params.h"

#include <functional>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv {
namespace {

using ::testing::StartsWith;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(SamplingParamsTest, DefaultsAreValid) { EXPECT_TRUE(SamplingParams().Validate().ok()); }

TEST(SamplingParamsTest, RangeEdgesAreValid) {
  const std::function<void(SamplingParams&)> edges[] = {
      [](SamplingParams& p) { p.temperature = 0.0f; },
      [](SamplingParams& p) { p.temperature = 100.0f; },
      [](SamplingParams& p) { p.top_k = 0; },
      [](SamplingParams& p) { p.top_k = 1; },
      [](SamplingParams& p) { p.top_k = 1 << 30; },
      [](SamplingParams& p) { p.top_p = 1.0f; },
      [](SamplingParams& p) { p.top_p = 1e-6f; },
      [](SamplingParams& p) { p.min_p = 0.0f; },
      [](SamplingParams& p) { p.min_p = 1.0f; },
      [](SamplingParams& p) { p.repetition_penalty = 1e-3f; },
      [](SamplingParams& p) { p.repetition_penalty = 10.0f; },
      [](SamplingParams& p) { p.presence_penalty = -2.0f; },
      [](SamplingParams& p) { p.presence_penalty = 2.0f; },
      [](SamplingParams& p) { p.frequency_penalty = -2.0f; },
      [](SamplingParams& p) { p.frequency_penalty = 2.0f; },
  };
  for (const auto& edge : edges) {
    SamplingParams params;
    edge(params);
    EXPECT_TRUE(params.Validate().ok()) << params.Validate();
  }
}

struct BadValue {
  std::string name;   // the test's name
  std::string field;  // the field the error must name
  std::function<void(SamplingParams&)> set;
};

class SamplingParamsBadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(SamplingParamsBadValueTest, IsInvalidArgumentNamingTheField) {
  SamplingParams params;
  GetParam().set(params);
  const absl::Status status = params.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), StartsWith(GetParam().field + " must"));
}

INSTANTIATE_TEST_SUITE_P(
    AllFields, SamplingParamsBadValueTest,
    ::testing::Values(
        BadValue{"TemperatureNegative", "temperature", [](auto& p) { p.temperature = -0.5f; }},
        BadValue{"TemperatureInf", "temperature", [](auto& p) { p.temperature = kInf; }},
        BadValue{"TemperatureNaN", "temperature", [](auto& p) { p.temperature = kNaN; }},
        BadValue{"TopKNegative", "top_k", [](auto& p) { p.top_k = -1; }},
        BadValue{"TopPZero", "top_p", [](auto& p) { p.top_p = 0.0f; }},
        BadValue{"TopPNegative", "top_p", [](auto& p) { p.top_p = -0.1f; }},
        BadValue{"TopPAboveOne", "top_p", [](auto& p) { p.top_p = 1.5f; }},
        BadValue{"TopPNaN", "top_p", [](auto& p) { p.top_p = kNaN; }},
        BadValue{"MinPNegative", "min_p", [](auto& p) { p.min_p = -0.1f; }},
        BadValue{"MinPAboveOne", "min_p", [](auto& p) { p.min_p = 1.01f; }},
        BadValue{"MinPNaN", "min_p", [](auto& p) { p.min_p = kNaN; }},
        BadValue{"RepetitionZero", "repetition_penalty",
                 [](auto& p) { p.repetition_penalty = 0.0f; }},
        BadValue{"RepetitionNegative", "repetition_penalty",
                 [](auto& p) { p.repetition_penalty = -1.0f; }},
        BadValue{"RepetitionInf", "repetition_penalty",
                 [](auto& p) { p.repetition_penalty = kInf; }},
        BadValue{"RepetitionNaN", "repetition_penalty",
                 [](auto& p) { p.repetition_penalty = kNaN; }},
        BadValue{"PresenceAbove", "presence_penalty", [](auto& p) { p.presence_penalty = 2.5f; }},
        BadValue{"PresenceBelow", "presence_penalty", [](auto& p) { p.presence_penalty = -2.5f; }},
        BadValue{"PresenceInf", "presence_penalty", [](auto& p) { p.presence_penalty = kInf; }},
        BadValue{"PresenceNaN", "presence_penalty", [](auto& p) { p.presence_penalty = kNaN; }},
        BadValue{"FrequencyAbove", "frequency_penalty",
                 [](auto& p) { p.frequency_penalty = 2.5f; }},
        BadValue{"FrequencyBelow", "frequency_penalty",
                 [](auto& p) { p.frequency_penalty = -2.5f; }},
        BadValue{"FrequencyInf", "frequency_penalty", [](auto& p) { p.frequency_penalty = -kInf; }},
        BadValue{"FrequencyNaN", "frequency_penalty", [](auto& p) { p.frequency_penalty = kNaN; }}),
    [](const ::testing::TestParamInfo<BadValue>& info) { return info.param.name; });

TEST(SamplingParamsTest, MessageGivesTheValue) {
  SamplingParams params;
  params.top_p = 1.5f;
  EXPECT_EQ(params.Validate().message(), "top_p must be in (0, 1], got 1.5");
}

TEST(SamplingParamsTest, IsGreedyOnlyAtZeroTemperature) {
  SamplingParams params;
  EXPECT_FALSE(params.is_greedy());
  params.temperature = 0.0f;
  EXPECT_TRUE(params.is_greedy());
}

// Filters do not change a greedy pick; every penalty does.
TEST(SamplingParamsTest, PlainGreedyMeansGreedyWithoutPenalties) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_k = 5;
  params.top_p = 0.5f;
  params.min_p = 0.1f;
  EXPECT_TRUE(params.is_plain_greedy());
  for (auto penalize : {+[](SamplingParams& p) { p.repetition_penalty = 1.1f; },
                        +[](SamplingParams& p) { p.presence_penalty = 0.5f; },
                        +[](SamplingParams& p) { p.frequency_penalty = -0.5f; }}) {
    SamplingParams penalized = params;
    penalize(penalized);
    EXPECT_TRUE(penalized.is_greedy());
    EXPECT_FALSE(penalized.is_plain_greedy());
  }
  params.temperature = 0.5f;
  EXPECT_FALSE(params.is_plain_greedy());
}

}  // namespace
}  // namespace mlkv
