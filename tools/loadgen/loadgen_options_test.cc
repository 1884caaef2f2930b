// mlkv-loadgen's flags: defaults, sweeps, and every impossible combination refused by name.
#include "tools/loadgen/loadgen_options.h"

#include <cmath>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::loadgen {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<LoadgenOptions> Parse(const std::string& line) {
  return ParseLoadgenOptions(absl::StrSplit(line, ' ', absl::SkipEmpty()));
}

TEST(LoadgenOptionsTest, Defaults) {
  auto o = Parse("--target h:1 --concurrency 4 --num-requests 10");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->target, "h:1");
  EXPECT_EQ(o->api, Api::kNative);
  ASSERT_EQ(o->points.size(), 1u);
  EXPECT_EQ(o->points[0].mode, LoadPoint::Mode::kClosedLoop);
  EXPECT_EQ(o->points[0].concurrency, 4);
  EXPECT_EQ(o->num_requests, 10);
  EXPECT_FALSE(o->duration_s.has_value());
  EXPECT_TRUE(o->ignore_eos);
  EXPECT_EQ(o->input_len.spec(), "128");
  EXPECT_FALSE(o->vocab_size.has_value());
  EXPECT_FALSE(o->slo.ttft_ms.has_value());
}

TEST(LoadgenOptionsTest, SweepsAndOpenLoop) {
  auto closed = Parse("--target h:1 --concurrency 1,8,64 --duration-seconds 5");
  ASSERT_TRUE(closed.ok()) << closed.status();
  ASSERT_EQ(closed->points.size(), 3u);
  EXPECT_EQ(closed->points[2].concurrency, 64);
  EXPECT_EQ(closed->duration_s, 5);

  auto open = Parse(
      "--target h:1 --request-rate 0.5,20,inf --arrival gamma --burstiness 0.5 "
      "--num-requests 100 --duration-seconds 30 --slo-ttft-ms 250 --seed 3 "
      "--no-ignore-eos --api kserve --model-name m");
  ASSERT_TRUE(open.ok()) << open.status();
  ASSERT_EQ(open->points.size(), 3u);
  EXPECT_EQ(open->points[0].mode, LoadPoint::Mode::kOpenLoop);
  EXPECT_EQ(open->points[1].request_rate, 20);
  EXPECT_TRUE(std::isinf(open->points[2].request_rate));
  EXPECT_EQ(open->burstiness, 0.5);
  EXPECT_EQ(open->slo.ttft_ms, 250);
  EXPECT_EQ(open->seed, 3u);
  EXPECT_FALSE(open->ignore_eos);
  EXPECT_EQ(open->api, Api::kKserve);
  EXPECT_EQ(open->model_name, "m");
}

TEST(LoadgenOptionsTest, ImpossibleCombinationsAreRefused) {
  const std::string base = "--target h:1 ";
  const std::pair<std::string, std::string> cases[] = {
      {"--concurrency 4", "--num-requests N and/or --duration-seconds S"},
      {"--num-requests 4", "give --concurrency N (closed loop) or --request-rate R"},
      {"--concurrency 4 --request-rate 2 --num-requests 4", "exclude each other"},
      {"--concurrency 4 --arrival gamma --num-requests 4", "--arrival and --burstiness"},
      {"--request-rate 4 --burstiness 2 --num-requests 4", "--burstiness needs --arrival gamma"},
      {"--request-rate 4 --arrival weibull --num-requests 4", "--arrival: must be"},
      {"--request-rate 0 --num-requests 4", "--request-rate: each rate"},
      {"--request-rate 3,x --num-requests 4", "--request-rate: each rate"},
      {"--concurrency 0 --num-requests 4", "--concurrency"},
      {"--concurrency 4 --num-requests 0", "--num-requests"},
      {"--concurrency 4 --duration-seconds -1", "--duration-seconds"},
      {"--concurrency 4 --num-requests 4 --trace t.jsonl --input-len 5", "--trace gives"},
      {"--concurrency 4 --num-requests 4 --shared-prefix-count 3", "go together"},
      {"--concurrency 4 --num-requests 4 --ignore-eos --no-ignore-eos", "exclude each other"},
      {"--concurrency 4 --num-requests 4 --api grpc", "--api: must be native or kserve"},
      {"--concurrency 4 --num-requests 4 --model-name m", "--model-name names the KServe"},
      {"--concurrency 4 --num-requests 4 --output-len uniform:3", "--output-len"},
      {"--concurrency 4 --num-requests 4 --slo-ttft-ms -5", "--slo-ttft-ms"},
      {"--concurrency 4 --num-requests 4 --bogus 1", "unknown flag --bogus"},
  };
  for (const auto& [flags, why] : cases) {
    auto o = Parse(base + flags);
    ASSERT_FALSE(o.ok()) << flags;
    EXPECT_THAT(o.status().message(), HasSubstr(why)) << flags;
  }
  EXPECT_THAT(Parse("--concurrency 4 --num-requests 4").status().message(),
              HasSubstr("--target: is required"));
}

TEST(LoadgenOptionsTest, HelpNeedsNothingElse) {
  auto o = Parse("--help");
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->help);
}

}  // namespace
}  // namespace mlkv::loadgen
