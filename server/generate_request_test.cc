// GenerateRequest validation and conversion: defaults for unset fields, explicit zeros kept,
// every invalid field refused with its name first; engine reports turned into wire messages.
#include "server/generate_request.h"

#include <cmath>
#include <functional>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mlkv::server {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;

ModelConfig SmallConfig() {
  auto config = ModelConfig::FromJson({{"hidden_size", 64},
                                       {"num_attention_heads", 4},
                                       {"num_hidden_layers", 4},
                                       {"intermediate_size", 96},
                                       {"vocab_size", 100},
                                       {"max_position_embeddings", 256},
                                       {"num_key_value_heads", 2},
                                       {"num_key_value_layers", 2}});
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

// max_model_len 128; a cache of 100 tokens (fewer than one full-length sequence).
const RequestLimits kLimits{128, 100};

v1::GenerateRequest Valid() {
  v1::GenerateRequest r;
  r.add_prompt_token_ids(1);
  r.add_prompt_token_ids(2);
  return r;
}

TEST(GenerateRequestTest, UnsetFieldsTakeTheDocumentedDefaults) {
  auto r = ToEngineRequest(Valid(), SmallConfig(), kLimits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->prompt_token_ids, ElementsAre(1, 2));
  EXPECT_EQ(r->max_tokens, 16);
  EXPECT_EQ(r->sampling.temperature, 1.0f);
  EXPECT_EQ(r->sampling.top_k, 0);
  EXPECT_EQ(r->sampling.top_p, 1.0f);
  EXPECT_EQ(r->sampling.min_p, 0.0f);
  EXPECT_EQ(r->sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(r->sampling.presence_penalty, 0.0f);
  EXPECT_EQ(r->sampling.frequency_penalty, 0.0f);
  EXPECT_FALSE(r->sampling.seed.has_value());
  EXPECT_FALSE(r->top_logprobs.has_value());
  EXPECT_FALSE(r->prompt_logprobs);
  EXPECT_FALSE(r->ignore_eos);
  EXPECT_TRUE(r->request_id.empty());
  EXPECT_EQ(r->priority, 0);
}

TEST(GenerateRequestTest, ExplicitZerosAreKept) {
  v1::GenerateRequest in = Valid();
  in.set_temperature(0.0f);
  in.set_seed(0);
  in.set_logprobs(0);
  in.set_min_p(0.0f);
  in.set_presence_penalty(0.0f);
  in.add_stop_token_ids(0);
  auto r = ToEngineRequest(in, SmallConfig(), kLimits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->sampling.is_greedy());
  ASSERT_TRUE(r->sampling.seed.has_value());
  EXPECT_EQ(*r->sampling.seed, 0u);
  ASSERT_TRUE(r->top_logprobs.has_value());
  EXPECT_EQ(*r->top_logprobs, 0);
  EXPECT_THAT(r->stop_token_ids, ElementsAre(0));
}

TEST(GenerateRequestTest, EveryFieldIsCarried) {
  v1::GenerateRequest in = Valid();
  in.set_request_id("abc");
  in.set_max_tokens(7);
  in.set_ignore_eos(true);
  in.add_stop_token_ids(5);
  in.set_temperature(0.7f);
  in.set_top_k(40);
  in.set_top_p(0.9f);
  in.set_min_p(0.05f);
  in.set_repetition_penalty(1.1f);
  in.set_presence_penalty(0.5f);
  in.set_frequency_penalty(-0.5f);
  in.set_seed(1234);
  in.set_logprobs(3);
  in.set_prompt_logprobs(true);
  in.set_priority(-2);
  auto r = ToEngineRequest(in, SmallConfig(), kLimits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->request_id, "abc");
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_TRUE(r->ignore_eos);
  EXPECT_THAT(r->stop_token_ids, ElementsAre(5));
  EXPECT_EQ(r->sampling.temperature, 0.7f);
  EXPECT_EQ(r->sampling.top_k, 40);
  EXPECT_EQ(r->sampling.top_p, 0.9f);
  EXPECT_EQ(r->sampling.min_p, 0.05f);
  EXPECT_EQ(r->sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(r->sampling.presence_penalty, 0.5f);
  EXPECT_EQ(r->sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(r->sampling.seed, 1234u);
  EXPECT_EQ(r->top_logprobs, 3);
  EXPECT_TRUE(r->prompt_logprobs);
  EXPECT_EQ(r->priority, -2);
}

struct BadCase {
  const char* name;
  std::function<void(v1::GenerateRequest*)> edit;
  const char* field;  // the message must start with it
};

class BadFieldTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadFieldTest, IsInvalidArgumentNamingTheField) {
  v1::GenerateRequest in = Valid();
  GetParam().edit(&in);
  auto r = ToEngineRequest(in, SmallConfig(), kLimits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), StartsWith(GetParam().field));
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();

void SetLongRequestId(v1::GenerateRequest* r) {
  std::string id;
  id.resize(kMaxRequestIdLength + 1, 'x');
  r->set_request_id(id);
}

void AddTooManyStopStrings(v1::GenerateRequest* r) {
  for (int i = 0; i <= kMaxStopStrings; ++i) r->add_stop("stop" + std::to_string(i));
}

INSTANTIATE_TEST_SUITE_P(
    AllFields, BadFieldTest,
    ::testing::Values(
        BadCase{"NoPrompt", [](auto* r) { r->clear_prompt_token_ids(); }, "prompt_token_ids"},
        BadCase{"BothPrompts", [](auto* r) { r->set_prompt_text("hi"); }, "prompt_token_ids"},
        BadCase{"TokenBeyondVocab", [](auto* r) { r->add_prompt_token_ids(100); },
                "prompt_token_ids"},
        BadCase{"NegativeToken", [](auto* r) { r->add_prompt_token_ids(-1); }, "prompt_token_ids"},
        BadCase{"ZeroMaxTokens", [](auto* r) { r->set_max_tokens(0); }, "max_tokens"},
        BadCase{"NegativeMaxTokens", [](auto* r) { r->set_max_tokens(-3); }, "max_tokens"},
        BadCase{"BeyondMaxModelLen", [](auto* r) { r->set_max_tokens(127); }, "max_tokens"},
        BadCase{"BeyondTheWholeCache", [](auto* r) { r->set_max_tokens(100); }, "max_tokens"},
        BadCase{"StopTokenBeyondVocab", [](auto* r) { r->add_stop_token_ids(1000); },
                "stop_token_ids"},
        BadCase{"TooManyStopStrings", AddTooManyStopStrings, "stop"},
        BadCase{"LongStopString",
                [](auto* r) { r->add_stop(std::string(kMaxStopStringBytes + 1, 'x')); }, "stop"},
        BadCase{"NegativeTemperature", [](auto* r) { r->set_temperature(-1.0f); }, "temperature"},
        BadCase{"NaNTemperature", [](auto* r) { r->set_temperature(kNaN); }, "temperature"},
        BadCase{"NegativeTopK", [](auto* r) { r->set_top_k(-1); }, "top_k"},
        BadCase{"ZeroTopP", [](auto* r) { r->set_top_p(0.0f); }, "top_p"},
        BadCase{"TopPAboveOne", [](auto* r) { r->set_top_p(1.5f); }, "top_p"},
        BadCase{"MinPAboveOne", [](auto* r) { r->set_min_p(2.0f); }, "min_p"},
        BadCase{"ZeroRepetitionPenalty", [](auto* r) { r->set_repetition_penalty(0.0f); },
                "repetition_penalty"},
        BadCase{"PresencePenaltyTooBig", [](auto* r) { r->set_presence_penalty(3.0f); },
                "presence_penalty"},
        BadCase{"FrequencyPenaltyTooSmall", [](auto* r) { r->set_frequency_penalty(-3.0f); },
                "frequency_penalty"},
        BadCase{"TooManyLogprobs", [](auto* r) { r->set_logprobs(21); }, "logprobs"},
        BadCase{"NegativeLogprobs", [](auto* r) { r->set_logprobs(-1); }, "logprobs"},
        BadCase{"LongRequestId", SetLongRequestId, "request_id"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// Text is the engine's to encode, so its length limits are the engine's to check too.
TEST(GenerateRequestTest, TextPromptAndStopStringsAreCarried) {
  v1::GenerateRequest in;
  in.set_prompt_text(std::string(1000, 'x'));
  in.set_max_tokens(120);
  for (int i = 0; i < kMaxStopStrings; ++i) in.add_stop(std::string(kMaxStopStringBytes, 'a' + i));
  auto r = ToEngineRequest(in, SmallConfig(), kLimits);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt_text, std::string(1000, 'x'));
  EXPECT_TRUE(r->prompt_token_ids.empty());
  ASSERT_EQ(r->stop_strings.size(), static_cast<size_t>(kMaxStopStrings));
  EXPECT_EQ(r->stop_strings[1], std::string(kMaxStopStringBytes, 'b'));
}

TEST(GenerateRequestTest, LimitsAreInclusive) {
  v1::GenerateRequest in = Valid();
  in.set_max_tokens(126);  // 2 + 126 = 128 = max_model_len, in a cache of 128 tokens
  EXPECT_TRUE(ToEngineRequest(in, SmallConfig(), {128, 128}).ok());
  in.set_max_tokens(99);  // caches 2 + 99 - 1 = 100 tokens: exactly the cache
  EXPECT_TRUE(ToEngineRequest(in, SmallConfig(), kLimits).ok());
}

TEST(GenerateRequestTest, DeltasMergeInOrder) {
  v1::TokenDelta out;
  AppendDelta(TokenDelta{{4}, {TokenLogprob{4, -0.5f, {{4, -0.5f}, {9, -1.5f}}}}, ""}, &out);
  AppendDelta(TokenDelta{{7}, {TokenLogprob{7, -0.25f, {{7, -0.25f}, {1, -2.0f}}}}, ""}, &out);
  EXPECT_THAT(out.token_ids(), ElementsAre(4, 7));
  ASSERT_EQ(out.logprobs_size(), 2);
  EXPECT_EQ(out.logprobs(1).token_id(), 7);
  EXPECT_EQ(out.logprobs(1).logprob(), -0.25f);
  ASSERT_EQ(out.logprobs(0).top_size(), 2);
  EXPECT_EQ(out.logprobs(0).top(1).token_id(), 9);
  EXPECT_EQ(out.logprobs(0).top(1).logprob(), -1.5f);
  // Text appends; a delta with text and no tokens (the held-back text at the end) adds text only.
  v1::TokenDelta text;
  AppendDelta(TokenDelta{{4}, {}, "Hel"}, &text);
  AppendDelta(TokenDelta{{7}, {}, ""}, &text);
  AppendDelta(TokenDelta{{}, {}, "lo"}, &text);
  EXPECT_THAT(text.token_ids(), ElementsAre(4, 7));
  EXPECT_EQ(text.text(), "Hello");
}

TEST(GenerateRequestTest, ResultCarriesReasonStopTokenAndUsage) {
  RequestResult result;
  result.finish_reason = FinishReason::kStop;
  result.stop_token_id = 0;  // a real id: must be reported as set
  result.output_token_ids = {3, 5, 0};
  result.prompt_logprobs = {-1.0f, -2.0f};
  result.num_prompt_tokens = 3;
  result.num_cached_prompt_tokens = 2;
  result.num_preemptions = 1;
  const v1::GenerateResult out = ToGenerateResult("r1", result);
  EXPECT_EQ(out.request_id(), "r1");
  EXPECT_EQ(out.finish_reason(), v1::FINISH_REASON_STOP);
  ASSERT_TRUE(out.has_stop_token_id());
  EXPECT_EQ(out.stop_token_id(), 0);
  EXPECT_EQ(out.usage().prompt_tokens(), 3);
  EXPECT_EQ(out.usage().completion_tokens(), 3);
  EXPECT_EQ(out.usage().cached_prompt_tokens(), 2);
  EXPECT_EQ(out.usage().preemptions(), 1);
  EXPECT_THAT(out.prompt_logprobs(), ElementsAre(-1.0f, -2.0f));

  result.finish_reason = FinishReason::kLength;
  result.stop_token_id.reset();
  EXPECT_FALSE(ToGenerateResult("r1", result).has_stop_token_id());
  EXPECT_EQ(ToGenerateResult("r1", result).finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_TRUE(ToGenerateResult("r1", result).stop_string().empty());
  result.finish_reason = FinishReason::kStop;
  result.stop_string = "\n\n";
  EXPECT_EQ(ToGenerateResult("r1", result).stop_string(), "\n\n");
  EXPECT_FALSE(ToGenerateResult("r1", result).has_stop_token_id());
  EXPECT_EQ(ToProto(FinishReason::kAbort), v1::FINISH_REASON_ABORT);
  EXPECT_EQ(ToProto(FinishReason::kError), v1::FINISH_REASON_ERROR);
}

}  // namespace
}  // namespace mlkv::server
