// The KServe request the load generator sends, and how it counts a response's tokens.
#include "tools/loadgen/kserve_client.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace mlkv::loadgen {
namespace {

const inference::ModelInferRequest::InferInputTensor* Input(const inference::ModelInferRequest& r,
                                                            const std::string& name) {
  for (const auto& input : r.inputs()) {
    if (input.name() == name) return &input;
  }
  return nullptr;
}

TEST(KserveRequestTest, TokenPromptStreamsWithSamplingParameters) {
  RequestSpec spec;
  spec.prompt_token_ids = {5, 6, 7};
  spec.output_len = 9;
  const inference::ModelInferRequest r = MakeKserveRequest(spec, "tiny", true);
  EXPECT_EQ(r.model_name(), "tiny");
  const auto* ids = Input(r, "input_ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(ids->datatype(), "INT32");
  EXPECT_EQ(ids->shape(0), 3);
  EXPECT_EQ(ids->contents().int_contents(2), 7);
  EXPECT_EQ(Input(r, "text_input"), nullptr);
  const auto* sampling = Input(r, "sampling_parameters");
  ASSERT_NE(sampling, nullptr);
  const auto json = nlohmann::json::parse(sampling->contents().bytes_contents(0));
  EXPECT_EQ(json["max_tokens"], 9);
  EXPECT_EQ(json["ignore_eos"], true);
  EXPECT_TRUE(Input(r, "stream")->contents().bool_contents(0));
  ASSERT_EQ(r.outputs_size(), 1);
  EXPECT_EQ(r.outputs(0).name(), "output_ids");
}

TEST(KserveRequestTest, TextPromptIsOneBytesElement) {
  RequestSpec spec;
  spec.prompt_text = "hello";
  const inference::ModelInferRequest r = MakeKserveRequest(spec, "m", false);
  const auto* text = Input(r, "text_input");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->contents().bytes_contents(0), "hello");
  EXPECT_EQ(Input(r, "input_ids"), nullptr);
}

TEST(KserveResponseTest, TokensAreTheOutputIdsElements) {
  inference::ModelInferResponse response;
  EXPECT_EQ(KserveResponseTokens(response), 0);
  auto* text = response.add_outputs();
  text->set_name("text_output");
  text->add_shape(1);
  auto* ids = response.add_outputs();
  ids->set_name("output_ids");
  ids->add_shape(1);
  ids->add_shape(3);
  EXPECT_EQ(KserveResponseTokens(response), 3);
}

}  // namespace
}  // namespace mlkv::loadgen
